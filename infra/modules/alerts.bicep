// Alerting: Azure Monitor metric alerts on the Event Grid system topic, one when it dead-letters
// events (a BlobCreated event could not be delivered to the function) and one when it drops
// events (they could be neither delivered nor written to the dead-letter container: the one loss
// nothing else reports). See docs/deploy.md, "Knowing when events are dead-lettered". The rules
// always exist; with alertEmail set, an action group e-mails that address when one fires and
// when it resolves. Two rules, since the criteria of one rule must all hold at once.

@description('Tags for every resource.')
param tags object

@description('Name of the Event Grid system topic whose dead-lettered events are watched.')
param systemTopicName string

@description('Name of the metric alert rule on dead-lettered events.')
param deadLetterAlertName string

@description('Name of the metric alert rule on dropped events.')
param droppedAlertName string

@description('Name of the action group (created only when alertEmail is set).')
param actionGroupName string

@description('E-mail address notified when events are dead-lettered. Empty: no action group; the alert still fires and is listed under Azure Monitor alerts.')
param alertEmail string = ''

// The short name appears in notifications; Azure Monitor allows at most 12 characters.
var actionGroupShortName = 'blob2batch'

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2022-06-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: actionGroupShortName
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Any dead-lettered event is worth a look: Event Grid gives up on an event only after 30 delivery
// attempts or 24 hours, or at once when the handler answers 400. Total over 15 minutes, evaluated
// every 5 minutes; the alert resolves by itself once a window has no dead letter.
resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: deadLetterAlertName
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid dead-lettered BlobCreated events: they were not delivered to the function. Read them in the dead-letter container; blob2batch redrive processes them again.'
    severity: 2
    enabled: true
    scopes: [
      systemTopic.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLetteredEvents'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: empty(alertEmail) ? [] : [
      {
        actionGroupId: resourceId('Microsoft.Insights/actionGroups', actionGroupName)
      }
    ]
  }
  dependsOn: [
    actionGroup
  ]
}

// An event Event Grid could not dead-letter either (the dead-letter container unreachable for 4
// hours) is gone: nothing else reports it. Severity 1, and the same windows.
resource droppedAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: droppedAlertName
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid dropped BlobCreated events: they could be neither delivered to the function nor written to the dead-letter container. Those blob versions get their tasks only from the Reconcile timer (within RECONCILE_LOOKBACK) or blob2batch reconcile.'
    severity: 1
    enabled: true
    scopes: [
      systemTopic.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DroppedEvents'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DroppedEventCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: empty(alertEmail) ? [] : [
      {
        actionGroupId: resourceId('Microsoft.Insights/actionGroups', actionGroupName)
      }
    ]
  }
  dependsOn: [
    actionGroup
  ]
}

output alertId string = deadLetterAlert.id
output droppedAlertId string = droppedAlert.id
output actionGroupCreated bool = !empty(alertEmail)
