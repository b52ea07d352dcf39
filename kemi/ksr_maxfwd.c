// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.maxfwd */
#include "ksr.h"
