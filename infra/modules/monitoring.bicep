// Log Analytics workspace and workspace-based Application Insights (Entra-only ingestion).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

param logAnalyticsName string
param applicationInsightsName string

@description('Principal id of the function app identity (gets Monitoring Metrics Publisher).')
param functionIdentityPrincipalId string

@description('Days of log retention.')
@minValue(30)
param retentionInDays int = 30

// Monitoring Metrics Publisher: lets the identity send telemetry when local auth is disabled.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    retentionInDays: retentionInDays
    sku: {
      name: 'PerGB2018'
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// Function identity: send the host's and the handler's telemetry, since ingestion takes Entra ID
// only (DisableLocalAuth).
resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionIdentityPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: functionIdentityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}

output connectionString string = appInsights.properties.ConnectionString
output name string = appInsights.name
