// Container registry for the word-count image and the images of workloads. Admin user disabled:
// the Batch pool pulls with its user-assigned identity (AcrPull), images are pushed by
// `az acr build` (ARM permissions).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Registry name (5-50 letters and digits).')
@minLength(5)
@maxLength(50)
param name string

@description('Principal id of the Batch pool identity (gets AcrPull).')
param poolIdentityPrincipalId string

@description('Registry SKU. Basic is enough for one small image.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Basic'

var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: name
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_139: Batch nodes are not in a VNet and pull over the public endpoint with their identity (AcrPull); private endpoints would also need the Premium SKU.
  // checkov:skip=CKV_AZURE_166: Image quarantine is a Premium-only preview feature; the only image is built from this repository by az acr build.
  // checkov:skip=CKV_AZURE_163: Vulnerability scanning is Microsoft Defender for Containers, a subscription-level plan, not a registry property.
  sku: {
    name: skuName
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

// Pool identity: pull the word-count image when a node starts (pre-pull) and any image of this
// registry when a task runs: the whole registry, so that a workload may run an image of any
// repository pushed here without a new role assignment. Pull only: no push, no delete.
resource poolPulls 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, poolIdentityPrincipalId, acrPull)
  scope: registry
  properties: {
    principalId: poolIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
  }
}

output id string = registry.id
output name string = registry.name
output loginServer string = registry.properties.loginServer
