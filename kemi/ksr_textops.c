// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.textops */
#include "ksr.h"
