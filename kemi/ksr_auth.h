// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/* Shared by KSR.auth and KSR.auth_db (kemi/ksr_auth.c, kemi/ksr_auth_db.c). */
#include "ksr.h"

/* The argument itself, or the value of the pseudo-variable it names ("$td", "$avp(pw)"). */
str_t ksr_auth_value(ksr_ctx_t *c, str_t v);
