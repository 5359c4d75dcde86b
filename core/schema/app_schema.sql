-- The monitored POS backend's tables, as in the seed plan, for demo and tests only.
-- Brace placeholders are replaced by the (quoted) table names from config.
CREATE TABLE IF NOT EXISTS {businesses} (
    id         SERIAL PRIMARY KEY,
    name       VARCHAR(200) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS {social_channels} (
    id          SERIAL PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES {businesses}(id) ON DELETE CASCADE,
    platform    VARCHAR(50) NOT NULL,         -- whatsapp | instagram | facebook
    name        VARCHAR(200) NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Not in the seed's DDL; shaped after what sendMessageWithRetry/moveToDeadLetterQueue touch.
CREATE TABLE IF NOT EXISTS {social_messages} (
    id            SERIAL PRIMARY KEY,
    business_id   INTEGER NOT NULL REFERENCES {businesses}(id) ON DELETE CASCADE,
    channel_id    INTEGER NOT NULL REFERENCES {social_channels}(id) ON DELETE CASCADE,
    status        VARCHAR(50) NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    error_message TEXT NULL,
    payload       JSONB NULL,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_social_messages_status ON {social_messages}(status);

CREATE TABLE IF NOT EXISTS {event_failures} (
    id SERIAL PRIMARY KEY,
    event_name VARCHAR(100) NOT NULL,
    business_id INTEGER NOT NULL,
    error_message TEXT NOT NULL,
    error_stack TEXT NULL,
    event_data JSONB NULL,
    retry_count INTEGER NOT NULL DEFAULT 0,
    status VARCHAR(50) NOT NULL DEFAULT 'failed' CHECK (status IN ('failed', 'retrying', 'resolved')),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    resolved_at TIMESTAMP NULL,
    CONSTRAINT fk_event_failures_business FOREIGN KEY (business_id)
        REFERENCES {businesses}(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_event_failures_business_id ON {event_failures}(business_id);
CREATE INDEX IF NOT EXISTS idx_event_failures_status ON {event_failures}(status);
CREATE INDEX IF NOT EXISTS idx_event_failures_event_name ON {event_failures}(event_name);

CREATE TABLE IF NOT EXISTS {dead_letter_messages} (
    id SERIAL PRIMARY KEY,
    message_id INTEGER NOT NULL,
    business_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    error_message TEXT NOT NULL,
    message_data JSONB NOT NULL,
    retry_count INTEGER NOT NULL DEFAULT 0,
    status VARCHAR(50) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retried', 'resolved', 'abandoned')),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    resolved_at TIMESTAMP NULL,
    CONSTRAINT fk_dead_letter_messages_business FOREIGN KEY (business_id)
        REFERENCES {businesses}(id) ON DELETE CASCADE,
    CONSTRAINT fk_dead_letter_messages_channel FOREIGN KEY (channel_id)
        REFERENCES {social_channels}(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_dead_letter_messages_business_id ON {dead_letter_messages}(business_id);
CREATE INDEX IF NOT EXISTS idx_dead_letter_messages_status ON {dead_letter_messages}(status);
