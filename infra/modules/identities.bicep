// User-assigned identities: one for the function app, one for the Batch pool's nodes.
// They exist before the resources that use them, so their role assignments can be in place
// before the function app or the pool first needs them.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Name of the function app identity.')
param functionIdentityName string

@description('Name of the Batch pool identity.')
param poolIdentityName string

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: functionIdentityName
  location: location
  tags: tags
}

resource poolIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: poolIdentityName
  location: location
  tags: tags
}

output functionIdentityId string = functionIdentity.id
output functionIdentityPrincipalId string = functionIdentity.properties.principalId
output functionIdentityClientId string = functionIdentity.properties.clientId
output poolIdentityId string = poolIdentity.id
output poolIdentityPrincipalId string = poolIdentity.properties.principalId
