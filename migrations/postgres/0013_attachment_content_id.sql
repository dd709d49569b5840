-- The Content-ID of an inbound mail's part (without angle brackets), so
-- an HTML part's cid: images can be shown from the message's own parts.
ALTER TABLE attachments ADD COLUMN content_id TEXT;
