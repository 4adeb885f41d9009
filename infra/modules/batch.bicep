// Azure Batch account (Batch service allocation, Entra ID only) and the word-count pool:
// containers on Ubuntu 22.04 (ubuntu-hpc), the word-count image pre-pulled through the pool's
// user-assigned identity, autoscale from 0 to a maximum, optional Spot capacity.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Batch account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param accountName string

@description('Pool id (BATCH_POOL_ID).')
param poolId string

@description('VM size of the nodes. Its family needs quota in the Batch account (see docs/deploy.md).')
param vmSize string

@description('Upper bound on the number of nodes.')
@minValue(1)
@maxValue(100)
param maxNodes int

@description('Spot (low-priority) nodes instead of dedicated ones.')
param useSpot bool

@description('Tasks run at the same time on one node.')
@minValue(1)
@maxValue(256)
param taskSlotsPerNode int

@description('Resource id of the pool\'s user-assigned identity.')
param poolIdentityId string

@description('Principal id of the function app identity (gets Azure Batch Job Submitter).')
param functionIdentityPrincipalId string

@description('Full reference of the word-count image, e.g. myacr.azurecr.io/wordcount:latest.')
param image string

@description('Login server of the registry holding the image.')
param registryServer string

@description('Optional principal id of a user who may read the account, pools, jobs and tasks (Azure Batch Account Reader) and add tasks (Azure Batch Job Submitter).')
param userPrincipalId string = ''

// Azure Batch Job Submitter: data actions on jobs and job schedules (jobs/* includes their
// tasks), read on pools; no pool or account changes.
var jobSubmitter = '48e5e92e-a480-4e71-aa9c-2778f4c13781'
// Azure Batch Account Reader: read-only, for the deploying user to inspect the account (quotas),
// the pool and tasks.
var accountReader = '11076f67-66f6-4be0-8f6b-f0609fd05cc9'

// Autoscale. $PendingTasks counts active and running tasks, so nodes stay while tasks run.
// Samples arrive about a minute late: look back 3 minutes, and only trust the samples when at
// least 70% of them exist (otherwise keep the current size). taskcompletion lets running tasks
// finish before a node is removed.
var slots = string(taskSlotsPerNode)
var currentNodes = useSpot ? '$CurrentLowPriorityNodes' : '$CurrentDedicatedNodes'
var dedicatedTarget = useSpot ? '0' : '$nodes'
var spotTarget = useSpot ? '$nodes' : '0'
var autoScaleFormula = join([
  '$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 3);'
  '$tasks = $samples >= 70 ? max($PendingTasks.GetSample(TimeInterval_Minute * 3)) : ${currentNodes} * ${slots};'
  '$nodes = min(${maxNodes}, ceil($tasks / ${slots}));'
  '$TargetDedicatedNodes = ${dedicatedTarget};'
  '$TargetLowPriorityNodes = ${spotTarget};'
  '$NodeDeallocationOption = taskcompletion;'
], '\n')

resource account 'Microsoft.Batch/batchAccounts@2024-07-01' = {
  name: accountName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_76: Microsoft-managed keys encrypt the account's metadata; customer-managed keys would need a Key Vault, and tasks keep no data in the account.
  properties: {
    poolAllocationMode: 'BatchService'
    // Entra ID only: Shared Key is disabled since every caller uses a managed identity.
    allowedAuthenticationModes: [
      'AAD'
      'TaskAuthenticationToken'
    ]
    publicNetworkAccess: 'Enabled'
  }
}

resource pool 'Microsoft.Batch/batchAccounts/pools@2024-07-01' = {
  parent: account
  name: poolId
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${poolIdentityId}': {}
    }
  }
  properties: {
    displayName: 'word count'
    vmSize: vmSize
    taskSlotsPerNode: taskSlotsPerNode
    taskSchedulingPolicy: {
      nodeFillType: 'Spread'
    }
    interNodeCommunication: 'Disabled'
    targetNodeCommunicationMode: 'Simplified'
    deploymentConfiguration: {
      virtualMachineConfiguration: {
        imageReference: {
          publisher: 'microsoft-dsvm'
          offer: 'ubuntu-hpc'
          sku: '2204'
          version: 'latest'
        }
        nodeAgentSkuId: 'batch.node.ubuntu 22.04'
        containerConfiguration: {
          type: 'DockerCompatible'
          containerImageNames: [
            image
          ]
          containerRegistries: [
            {
              registryServer: registryServer
              identityReference: {
                resourceId: poolIdentityId
              }
            }
          ]
        }
      }
    }
    scaleSettings: {
      autoScale: {
        formula: autoScaleFormula
        evaluationInterval: 'PT5M'
      }
    }
  }
}

// Function identity: BlobCreated and the Reconcile timer add tasks (Add Task, Add Task
// Collection) to the job, which they create on first use. Job Submitter is the narrowest built-in
// role that allows it.
resource functionSubmitsJobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, functionIdentityPrincipalId, jobSubmitter)
  scope: account
  properties: {
    principalId: functionIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', jobSubmitter)
  }
}

// The deploying user, if given: read the account (quotas, docs/deploy.md), the pool and tasks.
// Job Submitter below does not include reading the account itself.
resource userReadsAccount 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(account.id, userPrincipalId, accountReader)
  scope: account
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', accountReader)
  }
}

// The deploying user: `blob2batch status` gets tasks (Get Task), `reconcile` and `redrive` add
// them (Add Task, Add Task Collection). Adding tasks needs write on jobs, which Account Reader
// lacks; Job Submitter is the narrowest built-in role with it (jobs/*, no pool or account changes).
resource userSubmitsTasks 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(account.id, userPrincipalId, jobSubmitter)
  scope: account
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', jobSubmitter)
  }
}

output accountName string = account.name
output accountUrl string = 'https://${account.properties.accountEndpoint}'
output poolId string = pool.name
output autoScaleFormula string = autoScaleFormula
