// Where the alarms notify: the stage's `alarmTopicArn` parameter (an SNS topic ARN), or, when
// it is "", the topic this stack creates (pawql-{stage}-alarms; subscribe to it). Resolved when
// packaging, so the template holds a plain list and no always-true condition.
module.exports = async ({ resolveVariable }) => {
  const given = String((await resolveVariable("param:alarmTopicArn")) || "").trim();
  return given ? [given] : [{ Ref: "AlarmTopic" }];
};
