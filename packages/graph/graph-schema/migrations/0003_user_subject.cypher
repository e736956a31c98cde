// Users by data subject (the pseudonym of tenant + user id): erasing a subject finds its User here.
CREATE INDEX user_subject IF NOT EXISTS FOR (n:User) ON (n.tenantId, n.subject);
