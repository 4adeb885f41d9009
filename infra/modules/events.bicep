// Event Grid system topic on the data storage account, with a system-assigned identity that may
// write dead-lettered events into the dead-letter container. The subscription itself is created
// later, by infra/subscription.bicep, once the function code is deployed and running.

@description('Azure region (the storage account\'s region).')
param location string

@description('Tags for every resource.')
param tags object

param systemTopicName string

@description('Name of the data storage account.')
param storageAccountName string

param deadLetterContainerName string

var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// System topic identity: write events it could not deliver into the dead-letter container (and
// no other container); the subscription dead-letters with this identity.
resource topicWritesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, blobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
  }
}

output name string = systemTopic.name
output id string = systemTopic.id
