-- Every message counts the replies that opened no ticket in the last hour
-- (the hourly cap on explanations): an index over just those replies.
CREATE INDEX outbox_ticketless ON outbox (created_at) WHERE ticket_number IS NULL;
