// The data storage account: input, output, staging and dead-letter containers.
// No shared key, no anonymous access, HTTPS and TLS 1.2 only. Readers and writers use Entra ID:
// the Batch pool's identity (tasks; the partial counts of split word counts), the function app's
// identity (the Reconcile timer, read only; user delegation keys, to sign read-only SAS URLs for
// workloads with `input = "url"`),
// the Event Grid system topic's identity (dead letters) and, optionally, the deploying user (to
// drop files, read results and run the CLI's status, reconcile and redrive).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

param inputContainerName string
param outputContainerName string
param deadLetterContainerName string

@description('Container where the parts of a split word count leave their partial counts for the merge (STAGING_CONTAINER).')
param stagingContainerName string

@description('Days after its last modification that a partial count in the staging container is deleted.')
@minValue(1)
param stagingRetentionDays int

@description('Principal id of the Batch pool identity.')
param poolIdentityPrincipalId string

@description('Principal id of the function app identity (reads input and output for the Reconcile timer; gets user delegation keys).')
param functionIdentityPrincipalId string

@description('Optional principal id of a user who may upload input, read output, redrive dead letters and get user delegation keys.')
param userPrincipalId string = ''

@description('Storage SKU. LRS keeps cost low; choose ZRS or GZRS for resilience.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

var blobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var blobDelegator = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Batch nodes (Batch-managed public IPs, no VNet) download inputs and upload results over the public endpoint; shared key is disabled, so every request needs an Entra ID token and a data role.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the endpoint stays public for the Batch nodes, anonymous and shared-key access are disabled.
  // checkov:skip=CKV_AZURE_206: LRS by default to keep cost low: inputs can be uploaded again and results recomputed; set skuName to Standard_GZRS for geo-redundancy.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: inputContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource outputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: outputContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Partial counts of split word counts: the parts of a split blob's job (tasks on the pool) write
// them under `{job id}/parts/`, the job's merge task reads them back; nothing else uses them.
resource stagingContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: stagingContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Lifecycle management: a storage account has one policy, always named 'default'; a further rule
// belongs in this resource's `rules`, never in a second policy.
//
// Staged partial counts are deleted once stagingRetentionDays have passed since they were written.
// They are needed only until the split's merge has read them, Batch's retries of the merge
// included. The merge starts after the last part, and each of them is expected to wait up to
// TASK_MAX_QUEUE_TIME for a node and to run up to TASK_MAX_WALL_CLOCK_TIME per try: about 30
// hours from the first part to the merge's last try with the default task settings, well within
// the default 3 days. A split that failed and is submitted again runs all its parts again, under
// the same names, so no retry needs older partial counts; until they expire they show what a
// failed split left. Whoever lengthens the task limits lengthens this window too: a merge that
// finds a part missing fails (it checks that its parts cover the whole blob) rather than writing
// a wrong count.
//
// The prefix ends with `/`, so the rule matches the staging container and no other whose name
// merely starts the same; a staging container named like the input, output or dead-letter
// container is one resource defined twice, which Resource Manager refuses before deploying
// anything. Deleted blobs are then kept for the blob service's 7-day soft delete.
resource lifecyclePolicy 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'deleteStagedPartialCounts'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${stagingContainer.name}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: stagingRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

// Pool identity: read the input blob, the task's resource file. Read only.
resource poolReadsInput 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(inputContainer.id, poolIdentityPrincipalId, blobDataReader)
  scope: inputContainer
  properties: {
    principalId: poolIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
  }
}

// Pool identity: upload each task's result and, on failure, its logs into the output container.
resource poolWritesOutput 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, poolIdentityPrincipalId, blobDataContributor)
  scope: outputContainer
  properties: {
    principalId: poolIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
  }
}

// Pool identity, for split word counts: each part uploads its partial count into the staging
// container (a Batch output file: create and write), and the merge fetches the split job's folder
// of them (a resource file with storageContainerUrl and blobPrefix: list and read). Contributor on
// this container alone: Reader lacks write, and no built-in data role writes without delete. The
// function identity gets no role here: the handler never reads or writes partial counts.
resource poolStagesPartialCounts 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stagingContainer.id, poolIdentityPrincipalId, blobDataContributor)
  scope: stagingContainer
  properties: {
    principalId: poolIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
  }
}

// Function identity, for the Reconcile timer: list the input container with blob properties and
// metadata, to find blob versions that Event Grid did not deliver. Read only: the handler never
// writes input.
resource functionListsInput 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(inputContainer.id, functionIdentityPrincipalId, blobDataReader)
  scope: inputContainer
  properties: {
    principalId: functionIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
  }
}

// Function identity, for the Reconcile timer: list the output container and read result
// properties and metadata, to tell which blob versions already have a current result. Read only:
// results are written by the tasks (pool identity), not by the handler.
resource functionReadsOutput 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, functionIdentityPrincipalId, blobDataReader)
  scope: outputContainer
  properties: {
    principalId: functionIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
  }
}

// Function identity: get user delegation keys (Get User Delegation Key). Without an account key the
// handler signs, with such a key, the read-only SAS URL a workload with `input = "url"` gets for
// its blob, and the one through which each part of a split word count reads its byte range of the
// input blob. Storage checks this action on the account, so no container-scoped role grants it.
// Storage Blob Delegator allows that one action and no data access: a SAS signed with the key
// grants at most what the identity's own data roles grant (read on input and output, above).
// Granted always: splitting is on by default (SPLIT_THRESHOLD), the role alone reaches no data,
// and a workloads file that adds a workload reading by URL then needs no new role, which would
// take minutes to apply.
resource functionGetsDelegationKeys 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, functionIdentityPrincipalId, blobDelegator)
  scope: account
  properties: {
    principalId: functionIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDelegator)
  }
}

// The deploying user, if given (principalId). Input: upload files to count; the role's read part
// also serves `blob2batch status` and `blob2batch reconcile`, which list the input container.
resource userWritesInput 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(inputContainer.id, userPrincipalId, blobDataContributor)
  scope: inputContainer
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
  }
}

// The deploying user: read results and task logs; `status` and `reconcile` list the output
// container to find current results. Read only: results come from the tasks.
resource userReadsOutput 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(outputContainer.id, userPrincipalId, blobDataReader)
  scope: outputContainer
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
  }
}

// The deploying user: `blob2batch redrive` reads dead-lettered events, writes them under
// redriven/ or quarantine/ and deletes the originals, which takes write and delete on this
// container (and on no other).
resource userRedrivesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(deadLetterContainer.id, userPrincipalId, blobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
  }
}

// The deploying user: `blob2batch reconcile` and `redrive` submit tasks as the handler does and,
// for a workload with `input = "url"` or the parts of a split word count, sign the read-only input
// URL with a user delegation key requested with the user's own identity: the same role as the
// function identity's, on the account, where the key is authorized. The URL grants no more than
// the user's data roles above.
resource userGetsDelegationKeys 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(account.id, userPrincipalId, blobDelegator)
  scope: account
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDelegator)
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output stagingContainerName string = stagingContainer.name
