// Escalation notification attempts (escalation.notification events), one node each, keyed like every projected node.
CREATE CONSTRAINT notification_attempt_tenant_key IF NOT EXISTS FOR (n:NotificationAttempt) REQUIRE (n.tenantId, n.id) IS UNIQUE;
