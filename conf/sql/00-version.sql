-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
-- Kamailio's `version` table: one row per table with the layout version its
-- modules expect. Load this file first.
CREATE TABLE IF NOT EXISTS version (
    id SERIAL PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);

INSERT INTO version (table_name, table_version) VALUES ('version', '1')
    ON CONFLICT (table_name) DO NOTHING;
