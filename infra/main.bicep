// blob2batch: everything except the Event Grid subscription (infra/subscription.bicep, created by
// the azd postprovision hook once the function code runs). Deployed by `azd up` / `azd provision`.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; used in the resource group name and to derive unique resource names.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer Flex Consumption and Azure Batch.')
param location string

@description('Object id of the user running azd (AZURE_PRINCIPAL_ID). If set, that user may upload into the input container, read the output container, redrive the dead-letter container, read and add Batch tasks (the CLI\'s status, reconcile and redrive), and get user delegation keys (reconcile and redrive sign the input URLs of workloads with input = "url").')
param principalId string = ''

@description('Container that receives the files to count.')
param inputContainerName string = 'input'

@description('Container that receives the word counts and the logs of failed tasks.')
param outputContainerName string = 'output'

@description('Container that receives events Event Grid could not deliver.')
param deadLetterContainerName string = 'deadletter'

@description('Container where the parts of a split word count leave their partial counts for the merge (STAGING_CONTAINER); it must differ from the other containers.')
param stagingContainerName string = 'staging'

@description('Days after which a partial count in the staging container is deleted (a lifecycle management rule). Keep it above the longest a split job may take: its parts, then its merge, each waiting up to TASK_MAX_QUEUE_TIME and running TASK_MAX_WALL_CLOCK_TIME per try.')
@minValue(1)
param stagingRetentionDays int = 3

@description('Only blobs whose name starts with this prefix are counted (INPUT_PREFIX); empty for all.')
param inputPrefix string = ''

@description('Only blobs whose name ends with this suffix are counted (INPUT_SUFFIX); empty for all.')
param inputSuffix string = ''

// Set by azd from the preprovision hook (infra/hooks/build), which packages workloads.toml when the
// repository root has one: the setting then names the file the package carries, and is empty
// when the package carries none.
@description('Workloads file (WORKLOADS_FILE): \'workloads.toml\' when the function package carries one, at its root (the handler\'s working directory); empty for none, and then every blob gets the word count.')
@allowed([
  ''
  'workloads.toml'
])
param workloadsFile string = ''

@description('Batch pool id (BATCH_POOL_ID).')
param batchPoolId string = 'wordcount'

@description('Batch job id (BATCH_JOB_ID); the handler creates the job on first use.')
param batchJobId string = 'wordcount'

@description('VM size of the Batch nodes. Its family needs Batch quota (see docs/deploy.md).')
param batchVmSize string = 'Standard_D2s_v3'

@description('Maximum number of Batch nodes.')
@minValue(1)
@maxValue(100)
param batchMaxNodes int = 4

@description('Run tasks on Spot (low-priority) nodes: cheaper, may be preempted (tasks are then requeued).')
param batchUseSpot bool = true

@description('Tasks run at the same time on one node.')
@minValue(1)
@maxValue(256)
param batchTaskSlotsPerNode int = 1

@description('Repository of the word-count image in the registry.')
param wordcountImageRepository string = 'wordcount'

@description('Tag of the word-count image. The pool pre-pulls it when a node starts.')
param wordcountImageTag string = 'latest'

@description('Handler log filter (RUST_LOG).')
param rustLog string = 'info'

@description('E-mail address alerted when Event Grid dead-letters events (ALERT_EMAIL). Empty: the alert rule exists and fires in Azure Monitor, but notifies no one.')
param alertEmail string = ''

@description('Maximum run time of a task, ISO 8601 (TASK_MAX_WALL_CLOCK_TIME).')
param taskMaxWallClockTime string = 'PT1H'

@description('Retries of a failed task (TASK_MAX_RETRY_COUNT).')
@minValue(-1)
param taskMaxRetryCount int = 2

@description('How long a finished task\'s files stay on the node, ISO 8601 (TASK_RETENTION_TIME).')
param taskRetentionTime string = 'P1D'

@description('How long a task may wait for a node, ISO 8601 (TASK_MAX_QUEUE_TIME).')
param taskMaxQueueTime string = 'PT12H'

@description('Word counts of blobs at least this large are split across the pool (SPLIT_THRESHOLD): a size in bytes, or with KiB, MiB or GiB, or \'off\'. Empty: no setting, and the handler\'s default applies: 2 GiB, or off with a start-up warning when the word count\'s queue time plus the run time of all its tries exceeds what a user delegation key covers (about 7 days). A value given with such task limits stops the handler at start-up.')
param splitThreshold string = ''

@description('When the Reconcile timer runs (RECONCILE_SCHEDULE): an NCRONTAB expression with six fields, {second} {minute} {hour} {day} {month} {day of week}, in UTC. Read by the Functions host.')
@minLength(11)
param reconcileSchedule string = '0 */15 * * * *'

@description('The Reconcile timer considers blobs modified within this window, ISO 8601 (RECONCILE_LOOKBACK).')
param reconcileLookback string = 'PT25H'

@description('The Reconcile timer leaves blobs younger than this to Event Grid, ISO 8601 (RECONCILE_GRACE).')
param reconcileGrace string = 'PT10M'

// Flex Consumption accepts a maximum instance count from 40 to 1000 ("Event-driven scaling", Limit
// scale-out). A later revision of that page gives 1 as the lowest value; 40 is valid under both.
@description('Maximum number of function app instances (Flex Consumption: 40 to 1000).')
@minValue(40)
@maxValue(1000)
param functionMaximumInstanceCount int = 40

@description('Memory per function app instance, MB.')
@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'blob2batch'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    functionIdentityName: 'id-func-${token}'
    poolIdentityName: 'id-pool-${token}'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${token}'
    applicationInsightsName: 'appi-${token}'
    functionIdentityPrincipalId: identities.outputs.functionIdentityPrincipalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'stdata${token}'
    inputContainerName: inputContainerName
    outputContainerName: outputContainerName
    deadLetterContainerName: deadLetterContainerName
    stagingContainerName: stagingContainerName
    stagingRetentionDays: stagingRetentionDays
    poolIdentityPrincipalId: identities.outputs.poolIdentityPrincipalId
    functionIdentityPrincipalId: identities.outputs.functionIdentityPrincipalId
    userPrincipalId: principalId
  }
}

module events 'modules/events.bicep' = {
  name: 'events'
  scope: rg
  params: {
    location: location
    tags: tags
    systemTopicName: 'evgt-${token}'
    storageAccountName: storage.outputs.name
    deadLetterContainerName: deadLetterContainerName
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'cr${token}'
    poolIdentityPrincipalId: identities.outputs.poolIdentityPrincipalId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    tags: tags
    systemTopicName: events.outputs.name
    deadLetterAlertName: 'alert-deadletter-${token}'
    droppedAlertName: 'alert-dropped-${token}'
    actionGroupName: 'ag-${token}'
    alertEmail: alertEmail
  }
}

var wordcountImage = '${registry.outputs.loginServer}/${wordcountImageRepository}:${wordcountImageTag}'

module batch 'modules/batch.bicep' = {
  name: 'batch'
  scope: rg
  params: {
    location: location
    tags: tags
    accountName: 'ba${token}'
    poolId: batchPoolId
    vmSize: batchVmSize
    maxNodes: batchMaxNodes
    useSpot: batchUseSpot
    taskSlotsPerNode: batchTaskSlotsPerNode
    poolIdentityId: identities.outputs.poolIdentityId
    functionIdentityPrincipalId: identities.outputs.functionIdentityPrincipalId
    image: wordcountImage
    registryServer: registry.outputs.loginServer
    userPrincipalId: principalId
  }
}

// Handler settings: names and meanings in docs/settings.md.
// STORAGE_ACCOUNT_KEY and BATCH_ACCOUNT_KEY stay unset: tasks use the pool identity, the handler
// uses its managed identity (Entra ID) for Batch.
// BATCH_SUBMIT_MODE stays unset, so the handler adds tasks to the job BATCH_JOB_ID on the pool
// above (its default, task mode). Job mode (a job with an auto pool per blob) cannot work with
// these templates: it needs STORAGE_ACCOUNT_KEY, which the data account refuses (shared key
// disabled), and an image the auto pool's nodes can pull without the pool identity. See
// docs/deploy.md, "Job mode is not deployed".
var filterSettings = union(
  empty(inputPrefix) ? {} : { INPUT_PREFIX: inputPrefix },
  empty(inputSuffix) ? {} : { INPUT_SUFFIX: inputSuffix }
)
// WORKLOADS_FILE only with a workloads file: without the setting the handler runs the word count
// on every blob, exactly as it does when no workloads file exists.
var workloadSettings = empty(workloadsFile) ? {} : { WORKLOADS_FILE: workloadsFile }
// SPLIT_THRESHOLD only when given: without it the handler decides (docs/settings.md).
var splitSettings = empty(splitThreshold) ? {} : { SPLIT_THRESHOLD: splitThreshold }
var optionalSettings = union(filterSettings, workloadSettings, splitSettings)
var handlerSettings = union(optionalSettings, {
  STORAGE_ACCOUNT_URL: 'https://${storage.outputs.name}.blob.${environment().suffixes.storage}'
  INPUT_CONTAINER: inputContainerName
  OUTPUT_CONTAINER: outputContainerName
  RUNNER: 'batch'
  BATCH_ACCOUNT_URL: batch.outputs.accountUrl
  BATCH_ACCOUNT_NAME: batch.outputs.accountName
  BATCH_POOL_ID: batch.outputs.poolId
  BATCH_JOB_ID: batchJobId
  BATCH_NODE_IDENTITY: identities.outputs.poolIdentityId
  WORDCOUNT_IMAGE: wordcountImage
  TASK_MAX_WALL_CLOCK_TIME: taskMaxWallClockTime
  TASK_MAX_RETRY_COUNT: string(taskMaxRetryCount)
  TASK_RETENTION_TIME: taskRetentionTime
  TASK_MAX_QUEUE_TIME: taskMaxQueueTime
  // The Reconcile timer: the host resolves %RECONCILE_SCHEDULE% in Reconcile/function.json from
  // this setting (and does not index the function without it); the handler reads the others.
  RECONCILE_SCHEDULE: reconcileSchedule
  RECONCILE_LOOKBACK: reconcileLookback
  RECONCILE_GRACE: reconcileGrace
  // Where Event Grid dead-letters events; `blob2batch redrive` reads it.
  DEADLETTER_CONTAINER: deadLetterContainerName
  // Where the parts of split word counts leave their partial counts: the container created in
  // modules/storage.bicep, with its lifecycle rule and the pool identity's role. SPLIT_PART_SIZE
  // and SPLIT_MAX_PARTS stay unset (the handler's defaults); SPLIT_THRESHOLD is above.
  STAGING_CONTAINER: storage.outputs.stagingContainerName
  RUST_LOG: rustLog
})

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    planName: 'plan-${token}'
    functionAppName: 'func-${token}'
    hostStorageName: 'stfunc${token}'
    functionIdentityId: identities.outputs.functionIdentityId
    functionIdentityPrincipalId: identities.outputs.functionIdentityPrincipalId
    functionIdentityClientId: identities.outputs.functionIdentityClientId
    appInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    handlerSettings: handlerSettings
  }
}

// Read by the azd hooks (azd writes outputs into the environment).
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_ID string = functionApp.outputs.id
output CONTAINER_REGISTRY_NAME string = registry.outputs.name
output CONTAINER_REGISTRY_LOGIN_SERVER string = registry.outputs.loginServer
output WORDCOUNT_IMAGE string = wordcountImage
output WORDCOUNT_IMAGE_NAME string = '${wordcountImageRepository}:${wordcountImageTag}'
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output STORAGE_ACCOUNT_ID string = storage.outputs.id
output INPUT_CONTAINER string = inputContainerName
output OUTPUT_CONTAINER string = outputContainerName
output DEAD_LETTER_CONTAINER string = deadLetterContainerName
output STAGING_CONTAINER string = storage.outputs.stagingContainerName
output EVENT_GRID_SYSTEM_TOPIC_NAME string = events.outputs.name
output BATCH_ACCOUNT_NAME string = batch.outputs.accountName
output BATCH_ACCOUNT_URL string = batch.outputs.accountUrl
output BATCH_POOL_ID string = batch.outputs.poolId
output BATCH_JOB_ID string = batchJobId
