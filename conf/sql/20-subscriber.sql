-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 the ksrd authors
-- Subscribers for digest authentication (auth_db), Kamailio's layout version 7:
-- a plain password, or ha1 = MD5(username:realm:password) and
-- ha1b = MD5(username@domain:realm:password).
CREATE TABLE IF NOT EXISTS subscriber (
    id SERIAL PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);

CREATE INDEX IF NOT EXISTS subscriber_username_idx ON subscriber (username);

INSERT INTO version (table_name, table_version) VALUES ('subscriber', '7')
    ON CONFLICT (table_name) DO NOTHING;
