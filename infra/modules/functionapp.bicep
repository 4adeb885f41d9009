// The function app: Linux, Flex Consumption, custom handler (the Rust binary `blob2batch`), run
// as a user-assigned identity. Its host storage (AzureWebJobsStorage, the timer's schedule state
// and the deployment package container) is a separate account that only the function identity
// can use. On the data account the function identity may only read the input and output
// containers (modules/storage.bicep, for the Reconcile timer) and get user delegation keys (to sign
// read-only SAS URLs for workloads that read their input themselves, and for the parts of split
// word counts); it writes nothing there, has no role on the staging container, and submits Batch
// tasks.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

param planName string
param functionAppName string

@description('Host storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param hostStorageName string

@description('Resource id of the function app\'s user-assigned identity.')
param functionIdentityId string

@description('Principal id of the function app\'s user-assigned identity.')
param functionIdentityPrincipalId string

@description('Client id of the function app\'s user-assigned identity.')
param functionIdentityClientId string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Maximum number of function app instances (Flex Consumption: 40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance, MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Handler settings (docs/settings.md), merged into the app settings.')
param handlerSettings object

var deploymentContainerName = 'app-package'
var blobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: The Flex Consumption app is not VNet-integrated and reaches its host storage over the public endpoint; shared key is disabled, Entra ID only.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public endpoint, but no anonymous or shared-key access.
  // checkov:skip=CKV_AZURE_206: Host state and the deployment package are re-created by a deployment; geo-redundancy buys nothing here.
  // checkov:skip=CKV_AZURE_43: The name is a parameter, which this check cannot evaluate; main.bicep passes 'stfunc' + uniqueString(), lowercase letters and digits, 19 characters.
  name: hostStorageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
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

resource hostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The Functions host keeps leases and state in blobs (Storage Blob Data Owner), and the platform
// reads the deployment package from the same account with this identity.
resource functionOwnsHostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionIdentityPrincipalId, blobDataOwner)
  scope: hostStorage
  properties: {
    principalId: functionIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataOwner)
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_225: Zone redundancy for Flex Consumption exists only in some regions; the pipeline tolerates an outage because Event Grid retries deliveries for up to 24 hours.
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

var platformSettings = {
  AzureWebJobsStorage__accountName: hostStorage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: functionIdentityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${functionIdentityClientId};Authorization=AAD'
  // The handler's Entra credential: managed identity (IDENTITY_ENDPOINT is set by the platform),
  // this user-assigned identity selected by its client id.
  AZURE_CLIENT_ID: functionIdentityClientId
}

var appSettings = [for setting in items(union(handlerSettings, platformSettings)): {
  name: setting.key
  value: setting.value
}]

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the function over its public endpoint (no private endpoint without a VNet design); the Event Grid webhook requires the eventgrid_extension system key.
  // checkov:skip=CKV_AZURE_17: Event Grid does not present client certificates, so requiring them would block delivery.
  // checkov:skip=CKV_AZURE_212: Scale to zero is intended (Flex Consumption); Event Grid retries while an instance starts.
  // checkov:skip=CKV_AZURE_213: No HTTP-triggered function exists to serve a health check path; the Functions host probes the custom handler's readiness itself.
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${functionIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: functionIdentityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
  dependsOn: [
    functionOwnsHostStorage
    deploymentContainer
  ]
}

// Deployments use Entra ID (az CLI, azd); no FTP or basic-auth publishing.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output hostStorageName string = hostStorage.name
