// The data storage account: input, output and dead-letter containers.
// No shared key, no anonymous access, HTTPS and TLS 1.2 only. Readers and writers use Entra ID:
// the Batch pool's identity (tasks), the Event Grid system topic's identity (dead letters) and,
// optionally, the deploying user (to drop files and read results).

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

@description('Principal id of the Batch pool identity.')
param poolIdentityPrincipalId string

@description('Optional principal id of a user who may upload input and read output and dead letters.')
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

// Pool identity: read the input container (resource files), write the output container (results, task logs).
resource poolReadsInput 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(inputContainer.id, poolIdentityPrincipalId, blobDataReader)
  scope: inputContainer
  properties: {
    principalId: poolIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
  }
}

resource poolWritesOutput 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, poolIdentityPrincipalId, blobDataContributor)
  scope: outputContainer
  properties: {
    principalId: poolIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
  }
}

// The deploying user, if given: upload into input, read output and dead letters.
resource userWritesInput 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(inputContainer.id, userPrincipalId, blobDataContributor)
  scope: inputContainer
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
  }
}

resource userReadsOutput 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(outputContainer.id, userPrincipalId, blobDataReader)
  scope: outputContainer
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
  }
}

resource userReadsDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(deadLetterContainer.id, userPrincipalId, blobDataReader)
  scope: deadLetterContainer
  properties: {
    principalId: userPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
