// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* RPC of the Lua engine: app_lua.reload, app_lua.list, app_lua.api_list. */
#include <stdlib.h>
#include <string.h>

#include "../core/lib/json.h"
#include "../core/rpc/rpc.h"
#include "engine.h"
#include "engine_internal.h"

static void rpc_reload(rpc_req_t *r, const json_t *params)
{
	char err[1024];
	str_t path = STR_NULL;
	(void)params;
	/* an optional path replaces the script; a number (Kamailio's script index) is ignored */
	const json_t *p = rpc_param(r, 0, "path");
	if (json_is(p, JSON_STRING))
		path = p->str;
	char *cpath = path.len ? strndup(path.s, path.len) : NULL;
	int rc = ksr_engine_reload(cpath, err, sizeof(err));
	free(cpath);
	if (rc < 0) {
		rpc_fault(r, RPC_E_FAILED, "reload refused: %s", err);
		return;
	}
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kuint(w, "generation", ksr_engine_generation());
	json_w_kcstr(w, "script", ksr_engine_script());
	json_w_obj_end(w);
}

static void list_one(ksr_engine_t *e, void *arg)
{
	json_w_t *w = arg;
	json_w_obj_begin(w);
	json_w_kuint(w, "worker", e->worker_id);
	json_w_kuint(w, "generation", e->gen);
	json_w_kint(w, "loaded_at", (long long)e->loaded_at);
	json_w_kbool(w, "last_reload_failed", e->last_error);
	json_w_kuint(w, "memory", e->mem_used);
	json_w_obj_end(w);
}

static void rpc_list(rpc_req_t *r, const json_t *params)
{
	(void)params;
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kcstr(w, "script", ksr_engine_script());
	json_w_kuint(w, "generation", ksr_engine_generation());
	json_w_key(w, "workers");
	json_w_arr_begin(w);
	ksr_engine_foreach(list_one, w);
	json_w_arr_end(w);
	json_w_obj_end(w);
}

static void rpc_api_list(rpc_req_t *r, const json_t *params)
{
	(void)params;
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kuint(w, "msize", ksr_nfns);
	json_w_key(w, "methods");
	json_w_arr_begin(w);
	for (unsigned i = 0; i < ksr_nfns; i++) {
		const ksr_fn_def_t *f = &ksr_fns[i];
		char params_s[64] = "";
		for (const char *p = f->params; *p; p++)
			strncat(params_s, *p == 'i' ? (p == f->params ? "int" : ", int") : (p == f->params ? "str" : ", str"),
				sizeof(params_s) - strlen(params_s) - 1);
		json_w_obj_begin(w);
		json_w_kcstr(w, "module", strcmp(f->module, "core") ? f->module : "");
		json_w_kcstr(w, "name", f->name);
		json_w_kcstr(w, "ret", ksr_ret_name(f->ret));
		json_w_kcstr(w, "params", params_s);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_obj_end(w);
}

int ksr_engine_rpc_init(void)
{
	int rc = 0;
	rc |= rpc_register("app_lua.reload", rpc_reload, "Load the route script again (or the given path) in every worker; a broken script is refused");
	rc |= rpc_register("app_lua.list", rpc_list, "The script, its generation, and each worker's state");
	rc |= rpc_register("app_lua.api_list", rpc_api_list, "The KSR functions of the binding table");
	return rc;
}
