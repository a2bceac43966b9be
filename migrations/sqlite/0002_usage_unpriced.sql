-- A call to a model the organization has no price for is recorded at $0; this flag makes that
-- visible (usage rows, CSV, reports) instead of silently free.
ALTER TABLE usage_records ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
