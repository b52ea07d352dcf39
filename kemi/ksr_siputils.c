// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.siputils */
#include "ksr.h"
