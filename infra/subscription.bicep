// The Event Grid subscription: BlobCreated events of the input container -> the BlobCreated function.
// Deployed by the azd postprovision hook (infra/hooks/subscribe-events) into the resource group of
// main.bicep, AFTER the function package is deployed and the function is listed: Event Grid checks
// the function endpoint when the subscription is created, so creating it together with the
// function app fails.

targetScope = 'resourceGroup'

@description('Name of the Event Grid system topic on the data storage account.')
param systemTopicName string

@description('Name of the subscription. Dead-lettered events land under its upper-cased name.')
@minLength(3)
@maxLength(64)
param subscriptionName string = 'blob-created'

@description('Resource id of the function app.')
param functionAppId string

@description('Name of the function that receives the events (its folder in the package).')
param functionName string = 'BlobCreated'

@description('Resource id of the data storage account (dead-letter destination).')
param storageAccountId string

param inputContainerName string = 'input'
param deadLetterContainerName string = 'deadletter'

@description('Delivery attempts before an event is dead-lettered (1-30).')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes an event is retried before it is dead-lettered (1-1440).')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      subjectBeginsWith: '/blobServices/default/containers/${inputContainerName}/blobs/'
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Committed blobs only: skips CreateFile (an empty file on HNS) and SftpCreate.
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.api'
          values: [
            'PutBlob'
            'PutBlockList'
            'CopyBlob'
            'FlushWithClose'
            'SftpCommit'
          ]
        }
      ]
      enableAdvancedFilteringOnArrays: true
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Dead letters are written with the system topic's identity (Storage Blob Data Contributor on
    // the dead-letter container, assigned in modules/events.bicep).
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output name string = subscription.name
