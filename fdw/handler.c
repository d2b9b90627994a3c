/*-------------------------------------------------------------------------
 *
 * handler.c
 *	  pg_tviews_fdw: the wrapper, its options, planning, scans, EXPLAIN and
 *	  IMPORT FOREIGN SCHEMA.
 *
 * A status table is a foreign table with the option status_table naming
 * one of: metadata, queue, dependencies, workers, slots.  A scan runs the
 * table's view (tviews.<x>_rows) once, as the extension's owner (the
 * caller's privileges on the foreign table have been checked by then),
 * and returns its rows with ctid set from the view's row id: unique and
 * stable, so that DELETE ... WHERE ctid IN (SELECT ctid ...) hits exactly
 * the selected rows.  Conditions "entity_name = <value>" and
 * "processed_at IS NULL" are pushed into the view's query; every condition
 * is still checked locally.  EXPLAIN says which were pushed.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fdw.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/reloptions.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "nodes/nodeFuncs.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/spi.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(pg_tviews_fdw_handler);
PG_FUNCTION_INFO_V1(pg_tviews_fdw_validator);

static const StatusTable status_tables[] = {
	{"metadata", "pg_tviews_metadata", "metadata_rows", false, true, false, false},
	{"queue", "pg_tviews_queue", "queue_rows", true, true, true, true},
	{"dependencies", "pg_tviews_dependencies", "dependency_rows", false, false, false, false},
	{"workers", "pg_tviews_workers", "worker_rows", false, false, false, false},
	{"slots", "pg_tviews_slots", "slot_rows", false, false, false, false},
};

static const StatusTable *
status_table_by_name(const char *name)
{
	for (size_t i = 0; i < lengthof(status_tables); i++)
		if (strcmp(status_tables[i].name, name) == 0)
			return &status_tables[i];
	return NULL;
}

/* The status table a foreign table shows. */
const StatusTable *
pgtv_status_table_of(Oid foreigntableid)
{
	ForeignTable *ft = GetForeignTable(foreigntableid);
	ListCell   *lc;

	foreach(lc, ft->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "status_table") == 0)
		{
			const StatusTable *t = status_table_by_name(defGetString(d));

			if (t)
				return t;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
			 errmsg("foreign table \"%s\" has no valid status_table option",
					get_rel_name(foreigntableid))));
	return NULL;				/* keep compiler quiet */
}

/*
 * Row ids are below 2^47: block = id >> 15, offset = low 15 bits + 1
 * (offset 0 is invalid).
 */
void
pgtv_rowid_to_tid(int64 rowid, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (rowid >> 15),
				   (OffsetNumber) ((rowid & 0x7FFF) + 1));
}

int64
pgtv_tid_to_rowid(ItemPointer tid)
{
	return ((int64) ItemPointerGetBlockNumberNoCheck(tid) << 15) |
		(ItemPointerGetOffsetNumberNoCheck(tid) - 1);
}

/*
 * Run internal queries as the bootstrap superuser, who owns the extension
 * (it requires a superuser to install).  The caller restores with
 * SetUserIdAndSecContext(*save_userid, *save_sec).  Internal queries name
 * every function and operator by schema (the caller's search_path stays in
 * force, since entity_name is rendered for it) and call only functions of
 * the tviews schema, which set their own search_path.
 */
void
pgtv_as_extension_owner(Oid *save_userid, int *save_sec)
{
	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

/* ---------- options ---------- */

Datum
pg_tviews_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst(lc);

		if (catalog != ForeignTableRelationId || strcmp(d->defname, "status_table") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", d->defname),
					 catalog == ForeignTableRelationId ?
					 errhint("Valid options in this context are: status_table.") :
					 errhint("There are no valid options in this context.")));
		if (status_table_by_name(defGetString(d)) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
					 errmsg("invalid value for option \"status_table\": \"%s\"",
							defGetString(d)),
					 errhint("Valid values are: metadata, queue, dependencies, workers, slots.")));
	}
	PG_RETURN_VOID();
}

/* ---------- planning ---------- */

/*
 * Rows in a status table now: a sane estimate at little cost.  Only for
 * roles that may read the table (others get the executor's permission
 * error, and a default estimate); the query names everything by schema.
 */
static double
count_rows(const StatusTable *t, Oid foreigntableid)
{
	Oid			save_userid;
	int			save_sec;
	double		rows = 10;

	if (pg_class_aclcheck(foreigntableid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return rows;
	pgtv_as_extension_owner(&save_userid, &save_sec);
	SPI_connect();
	if (SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM tviews.%s", t->view), true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;

		rows = (double) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	return Max(rows, 1);
}

static void
get_rel_size(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	const StatusTable *t = pgtv_status_table_of(foreigntableid);

	baserel->fdw_private = (void *) t;
	baserel->rows = clamp_row_est(count_rows(t, foreigntableid) *
								  clauselist_selectivity(root, baserel->baserestrictinfo,
														 0, JOIN_INNER, NULL));
}

static void
get_paths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	Cost		startup = 10;
	Cost		total = startup + baserel->rows * cpu_tuple_cost * 10;

	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL,
													   baserel->rows, startup,
													   total, NIL, NULL, NULL,
													   NIL));
}

/* Is this a column of the scanned relation named name? */
static bool
is_column(Node *n, Index relid, Oid foreigntableid, const char *name)
{
	Var		   *v;
	char	   *att;

	if (n == NULL || !IsA(n, Var))
		return false;
	v = (Var *) n;
	if (v->varno != (int) relid || v->varlevelsup != 0 || v->varattno <= 0)
		return false;
	att = get_attname(foreigntableid, v->varattno, true);
	return att && strcmp(att, name) == 0;
}

/*
 * Conditions the view's query can take: entity_name = <expression not
 * depending on the row>, processed_at IS NULL.  Returns the WHERE text
 * ($n refer to *params) and a description for EXPLAIN.
 */
static void
classify_quals(List *clauses, Index relid, Oid foreigntableid,
			   List **params, StringInfo where, StringInfo explain)
{
	ListCell   *lc;

	foreach(lc, clauses)
	{
		Expr	   *c = lfirst(lc);

		if (IsA(c, OpExpr) && list_length(((OpExpr *) c)->args) == 2)
		{
			OpExpr	   *op = (OpExpr *) c;
			Node	   *l = linitial(op->args);
			Node	   *r = lsecond(op->args);
			Node	   *val = NULL;

			/* the built-in text equality, under a deterministic collation */
			if (op->opno != TextEqualOperator ||
				(OidIsValid(op->inputcollid) &&
				 !get_collation_isdeterministic(op->inputcollid)))
				continue;
			if (is_column(l, relid, foreigntableid, "entity_name"))
				val = r;
			else if (is_column(r, relid, foreigntableid, "entity_name"))
				val = l;
			if (val == NULL || contain_var_clause(val) ||
				contain_volatile_functions(val) || contain_subplans(val))
				continue;
			*params = lappend(*params, val);
			appendStringInfo(where, "%sentity_name OPERATOR(pg_catalog.=) $%d",
							 where->len ? " AND " : "", list_length(*params));
			appendStringInfo(explain, "%sentity_name = $%d",
							 explain->len ? ", " : "", list_length(*params));
		}
		else if (IsA(c, NullTest) && ((NullTest *) c)->nulltesttype == IS_NULL &&
				 !((NullTest *) c)->argisrow &&
				 is_column((Node *) ((NullTest *) c)->arg, relid, foreigntableid,
						   "processed_at"))
		{
			appendStringInfo(where, "%sprocessed_at IS NULL", where->len ? " AND " : "");
			appendStringInfo(explain, "%sprocessed_at IS NULL", explain->len ? ", " : "");
		}
	}
}

static ForeignScan *
get_plan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
		 ForeignPath *best_path, List *tlist, List *scan_clauses,
		 Plan *outer_plan)
{
	const StatusTable *t = baserel->fdw_private;
	List	   *clauses = extract_actual_clauses(scan_clauses, false);
	List	   *params = NIL;
	StringInfoData where;
	StringInfoData explain;

	initStringInfo(&where);
	initStringInfo(&explain);
	classify_quals(clauses, baserel->relid, foreigntableid, &params, &where, &explain);

	/* every condition is rechecked locally: pushing down only narrows */
	return make_foreignscan(tlist, clauses, baserel->relid, params,
							list_make3(makeString((char *) t->name),
									   makeString(where.data),
									   makeString(explain.data)),
							NIL, NIL, outer_plan);
}

/* ---------- scanning ---------- */

typedef struct StatusScanState
{
	MemoryContext cxt;			/* rows live here, for the whole scan */
	const StatusTable *table;
	char	   *sql;
	char	   *pushed;
	List	   *param_exprs;	/* ExprState * */
	List	   *tuples;			/* HeapTuple, t_self = row's tid */
	int			next;
	bool		loaded;
} StatusScanState;

/*
 * Run a status table's view (with conditions) and return its rows as
 * tuples of the foreign table, columns matched by name.
 */
List *
pgtv_fetch_rows(Relation rel, const StatusTable *t, const char *where,
				int nparams, Oid *types, Datum *values, char *nulls)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext outer = CurrentMemoryContext;
	Oid			save_userid;
	int			save_sec;
	List	   *tuples = NIL;
	char	   *sql = psprintf("SELECT * FROM tviews.%s%s%s", t->view,
							   where && *where ? " WHERE " : "",
							   where ? where : "");

	pgtv_as_extension_owner(&save_userid, &save_sec);
	SPI_connect();
	if (SPI_execute_with_args(sql, nparams, types, values, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_tviews_fdw: could not read %s", t->view);

	{
		TupleDesc	sdesc = SPI_tuptable->tupdesc;
		int		   *map = palloc(sizeof(int) * desc->natts);

		/* foreign column -> view column (0-based; -1: none) */
		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute fa = TupleDescAttr(desc, a);

			map[a] = -1;
			if (fa->attisdropped)
				continue;
			for (int j = 1; j < sdesc->natts; j++)
			{
				Form_pg_attribute sa = TupleDescAttr(sdesc, j);

				if (strcmp(NameStr(fa->attname), NameStr(sa->attname)) == 0)
				{
					if (fa->atttypid != sa->atttypid)
						ereport(ERROR,
								(errcode(ERRCODE_DATATYPE_MISMATCH),
								 errmsg("column \"%s\" of foreign table \"%s\" has type %s, but the status table gives %s",
										NameStr(fa->attname), RelationGetRelationName(rel),
										format_type_be(fa->atttypid),
										format_type_be(sa->atttypid)),
								 errhint("Recreate the foreign table with IMPORT FOREIGN SCHEMA pg_tviews.")));
					map[a] = j;
				}
			}
		}

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	src = SPI_tuptable->vals[i];
			Datum	   *v = palloc(sizeof(Datum) * desc->natts);
			bool	   *n = palloc(sizeof(bool) * desc->natts);
			bool		isnull;
			int64		rowid = DatumGetInt64(SPI_getbinval(src, sdesc, 1, &isnull));
			HeapTuple	tup;
			MemoryContext old;

			for (int a = 0; a < desc->natts; a++)
			{
				if (map[a] < 0)
				{
					v[a] = (Datum) 0;
					n[a] = true;
				}
				else
					v[a] = SPI_getbinval(src, sdesc, map[a] + 1, &n[a]);
			}
			old = MemoryContextSwitchTo(outer);
			tup = heap_form_tuple(desc, v, n);
			pgtv_rowid_to_tid(rowid, &tup->t_self);
			tuples = lappend(tuples, tup);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	return tuples;
}

static void
begin_scan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	StatusScanState  *st = palloc0(sizeof(StatusScanState));

	st->table = status_table_by_name(strVal(linitial(plan->fdw_private)));
	st->sql = strVal(lsecond(plan->fdw_private));	/* the WHERE text */
	st->pushed = strVal(lthird(plan->fdw_private));
	st->param_exprs = ExecInitExprList(plan->fdw_exprs, (PlanState *) node);
	/* not the per-tuple context IterateForeignScan runs in */
	st->cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
									"pg_tviews_fdw scan", ALLOCSET_DEFAULT_SIZES);
	node->fdw_state = st;
}

static TupleTableSlot *
iterate_scan(ForeignScanState *node)
{
	StatusScanState  *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (!st->loaded)
	{
		ExprContext *econtext = node->ss.ps.ps_ExprContext;
		int			n = list_length(st->param_exprs);
		Oid		   *types = palloc(sizeof(Oid) * Max(n, 1));
		Datum	   *values = palloc(sizeof(Datum) * Max(n, 1));
		char	   *nulls = palloc(Max(n, 1));
		int			i = 0;
		ListCell   *lc;
		MemoryContext old;

		foreach(lc, st->param_exprs)
		{
			ExprState  *es = lfirst(lc);
			bool		isnull;

			types[i] = TEXTOID;
			values[i] = ExecEvalExpr(es, econtext, &isnull);
			nulls[i] = isnull ? 'n' : ' ';
			i++;
		}
		MemoryContextReset(st->cxt);
		old = MemoryContextSwitchTo(st->cxt);
		st->tuples = pgtv_fetch_rows(node->ss.ss_currentRelation, st->table,
									 st->sql, n, types, values, nulls);
		MemoryContextSwitchTo(old);
		st->next = 0;
		st->loaded = true;
	}

	ExecClearTuple(slot);
	if (st->next < list_length(st->tuples))
		ExecStoreHeapTuple(list_nth(st->tuples, st->next++), slot, false);
	return slot;
}

static void
rescan(ForeignScanState *node)
{
	StatusScanState  *st = node->fdw_state;

	/* parameters may have changed: read again */
	st->loaded = false;
}

static void
end_scan(ForeignScanState *node)
{
}

static void
explain_scan(ForeignScanState *node, ExplainState *es)
{
	StatusScanState  *st = node->fdw_state;

	ExplainPropertyText("Status Table", st->table->name, es);
	ExplainPropertyText("Pushed Down", st->pushed[0] ? st->pushed : "none", es);
	if (es->verbose)
		ExplainPropertyText("Source Query",
							psprintf("SELECT * FROM tviews.%s%s%s", st->table->view,
									 st->sql[0] ? " WHERE " : "", st->sql), es);
}

/* ---------- IMPORT FOREIGN SCHEMA pg_tviews ---------- */

static List *
import_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	List	   *commands = NIL;
	Oid			nsp = get_namespace_oid("tviews", false);

	if (strcmp(stmt->remote_schema, "pg_tviews") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("schema \"%s\" is not available on a pg_tviews server", stmt->remote_schema),
				 errhint("Use IMPORT FOREIGN SCHEMA pg_tviews.")));

	for (size_t i = 0; i < lengthof(status_tables); i++)
	{
		const StatusTable *t = &status_tables[i];
		Oid			viewid = get_relname_relid(t->view, nsp);
		Relation	view;
		TupleDesc	desc;
		StringInfoData buf;

		if (!OidIsValid(viewid))
			elog(ERROR, "pg_tviews_fdw: view tviews.%s is missing", t->view);
		view = relation_open(viewid, AccessShareLock);
		desc = RelationGetDescr(view);
		initStringInfo(&buf);
		appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (", quote_identifier(t->foreign_name));
		for (int a = 1; a < desc->natts; a++)	/* skip rowid */
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			appendStringInfo(&buf, "%s%s %s", a > 1 ? ", " : "",
							 quote_identifier(NameStr(att->attname)),
							 format_type_with_typemod(att->atttypid, att->atttypmod));
		}
		appendStringInfo(&buf, ") SERVER %s OPTIONS (status_table %s)",
						 quote_identifier(server->servername),
						 quote_literal_cstr(t->name));
		relation_close(view, AccessShareLock);
		commands = lappend(commands, buf.data);
	}
	return commands;
}

Datum
pg_tviews_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	r->GetForeignRelSize = get_rel_size;
	r->GetForeignPaths = get_paths;
	r->GetForeignPlan = get_plan;
	r->BeginForeignScan = begin_scan;
	r->IterateForeignScan = iterate_scan;
	r->ReScanForeignScan = rescan;
	r->EndForeignScan = end_scan;
	r->ExplainForeignScan = explain_scan;
	r->ImportForeignSchema = import_schema;
	pgtv_fdw_modify_routines(r);
	PG_RETURN_POINTER(r);
}
