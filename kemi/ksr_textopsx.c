// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.textopsx */
#include "ksr.h"
