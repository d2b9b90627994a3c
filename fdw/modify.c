/*-------------------------------------------------------------------------
 *
 * modify.c
 *	  Writes through pg_tviews' status tables: they act on the engine.
 *
 *	 UPDATE pg_tviews_metadata   emergency_disabled / _time / _reason
 *	                             (persistent), last_error = NULL (clear)
 *	 UPDATE pg_tviews_queue      priority; retry_count = 0 retries now
 *	 DELETE FROM pg_tviews_queue drops pending (or parked) work; its
 *	                             TVIEWs are marked stale
 *	 TRUNCATE pg_tviews_queue    drops all of it
 *	 INSERT INTO pg_tviews_queue queues a refresh of a key (or of the
 *	                             whole TVIEW with a NULL key)
 *
 * Rows are addressed by their ctid (the status table's row id), added as
 * the row identity of UPDATE and DELETE.  PostgreSQL has checked the
 * caller's privileges on the foreign table (writes are granted to
 * pg_tviews_admin); the work itself is done by functions in the tviews
 * schema, run as the extension's owner.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fdw.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

typedef struct ModifyState
{
	const StatusTable *table;
	AttrNumber	ctid_attno;		/* junk ctid in the subplan's output */
	List	   *set_columns;	/* UPDATE: attnums (int) the statement sets */
} ModifyState;

static void
add_update_targets(PlannerInfo *root, Index rtindex,
				   RangeTblEntry *target_rte, Relation target_relation)
{
	Var		   *var = makeVar(rtindex, SelfItemPointerAttributeNumber,
							  TIDOID, -1, InvalidOid, 0);

	add_row_identity_var(root, var, rtindex, "ctid");
}

static List *
plan_modify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
			int subplan_index)
{
	return NIL;
}

static int
is_updatable(Relation rel)
{
	const StatusTable *t = pgtv_status_table_of(RelationGetRelid(rel));

	return (t->can_insert ? (1 << CMD_INSERT) : 0) |
		(t->can_update ? (1 << CMD_UPDATE) : 0) |
		(t->can_delete ? (1 << CMD_DELETE) : 0);
}

static void
begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
			 List *fdw_private, int subplan_index, int eflags)
{
	ModifyState *ms = palloc0(sizeof(ModifyState));
	Relation	rel = rinfo->ri_RelationDesc;
	CmdType		op = mtstate->operation;

	ms->table = pgtv_status_table_of(RelationGetRelid(rel));
	if ((op == CMD_INSERT && !ms->table->can_insert) ||
		(op == CMD_UPDATE && !ms->table->can_update) ||
		(op == CMD_DELETE && !ms->table->can_delete))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot %s pg_tviews status table \"%s\"",
						op == CMD_INSERT ? "insert into" :
						op == CMD_UPDATE ? "update" : "delete from",
						RelationGetRelationName(rel))));

	if (op == CMD_UPDATE || op == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		ms->ctid_attno = ExecFindJunkAttributeInTlist(subplan->targetlist, "ctid");
		if (!AttributeNumberIsValid(ms->ctid_attno))
			elog(ERROR, "pg_tviews_fdw: could not find junk ctid column");
	}
	if (op == CMD_UPDATE)
	{
		Bitmapset  *cols = ExecGetUpdatedCols(rinfo, mtstate->ps.state);
		int			x = -1;

		while ((x = bms_next_member(cols, x)) >= 0)
			ms->set_columns = lappend_int(ms->set_columns,
										  x + FirstLowInvalidHeapAttributeNumber);
	}
	rinfo->ri_FdwState = ms;
}

/* The text of a slot's column, or NULL. */
static Datum
column_text(TupleTableSlot *slot, AttrNumber attno, bool *isnull)
{
	Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, attno - 1);
	Datum		d = slot_getattr(slot, attno, isnull);
	Oid			outfunc;
	bool		varlena;

	if (*isnull)
		return (Datum) 0;
	getTypeOutputInfo(att->atttypid, &outfunc, &varlena);
	return CStringGetTextDatum(OidOutputFunctionCall(outfunc, d));
}

/* cols/vals arrays for the given attnums of a slot */
static void
columns_arrays(TupleTableSlot *slot, List *attnums, Datum *cols, Datum *vals)
{
	int			n = list_length(attnums);
	Datum	   *c = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *v = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *vn = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i = 0;
	ListCell   *lc;

	foreach(lc, attnums)
	{
		AttrNumber	a = lfirst_int(lc);

		c[i] = CStringGetTextDatum(NameStr(TupleDescAttr(slot->tts_tupleDescriptor, a - 1)->attname));
		v[i] = column_text(slot, a, &vn[i]);
		i++;
	}
	*cols = PointerGetDatum(construct_md_array(c, NULL, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	*vals = PointerGetDatum(construct_md_array(v, vn, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Run one of the tviews.fdw_* functions as the extension's owner. */
static bool
call_writer(const char *sql, int nargs, Oid *types, Datum *args, char *nulls)
{
	Oid			save_userid;
	int			save_sec;
	bool		result = true;

	pgtv_as_extension_owner(&save_userid, &save_sec);
	SPI_connect();
	if (SPI_execute_with_args(sql, nargs, types, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_tviews_fdw: %s failed", sql);
	if (SPI_processed == 1 && SPI_tuptable->tupdesc->natts == 1 &&
		SPI_tuptable->tupdesc->attrs[0].atttypid == BOOLOID)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		result = !isnull && DatumGetBool(d);
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	return result;
}

static int64
row_id(ModifyState *ms, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(planSlot, ms->ctid_attno, &isnull);

	if (isnull)
		elog(ERROR, "pg_tviews_fdw: ctid is NULL");
	return pgtv_tid_to_rowid((ItemPointer) DatumGetPointer(d));
}

static TupleTableSlot *
exec_update(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
			TupleTableSlot *planSlot)
{
	ModifyState *ms = rinfo->ri_FdwState;
	Oid			types[4] = {TEXTOID, INT8OID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[4];

	args[0] = CStringGetTextDatum(ms->table->name);
	args[1] = Int64GetDatum(row_id(ms, planSlot));
	columns_arrays(slot, ms->set_columns, &args[2], &args[3]);
	call_writer("SELECT tviews.fdw_update($1, $2, $3, $4)", 4, types, args, NULL);
	return slot;
}

static TupleTableSlot *
exec_delete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
			TupleTableSlot *planSlot)
{
	ModifyState *ms = rinfo->ri_FdwState;
	int64		rowid = row_id(ms, planSlot);
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		args[2] = {CStringGetTextDatum(ms->table->name), Int64GetDatum(rowid)};
	List	   *rows;

	/* the row as it is now, for RETURNING; gone means nothing to delete */
	rows = pgtv_fetch_rows(rinfo->ri_RelationDesc, ms->table,
						   "rowid OPERATOR(pg_catalog.=) $1",
						   1, &types[1], &args[1], NULL);
	if (rows == NIL)
		return NULL;
	if (!call_writer("SELECT tviews.fdw_delete($1, $2)", 2, types, args, NULL))
		return NULL;
	ExecStoreHeapTuple(linitial(rows), slot, false);
	return slot;
}

static TupleTableSlot *
exec_insert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
			TupleTableSlot *planSlot)
{
	ModifyState *ms = rinfo->ri_FdwState;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	List	   *attnums = NIL;
	Oid			types[3] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[3];

	for (int a = 1; a <= desc->natts; a++)
		if (!TupleDescAttr(desc, a - 1)->attisdropped)
			attnums = lappend_int(attnums, a);
	args[0] = CStringGetTextDatum(ms->table->name);
	columns_arrays(slot, attnums, &args[1], &args[2]);

	/*
	 * entity_name names a relation as the caller sees it (search_path):
	 * resolve it here, before the work runs as the extension's owner.
	 */
	{
		ArrayType  *cols = DatumGetArrayTypeP(args[1]);
		ArrayType  *vals = DatumGetArrayTypeP(args[2]);
		Datum	   *c;
		Datum	   *v;
		bool	   *vn;
		int			n;
		int			dims[1];
		int			lbs[1] = {1};

		deconstruct_array(cols, TEXTOID, -1, false, TYPALIGN_INT, &c, NULL, &n);
		deconstruct_array(vals, TEXTOID, -1, false, TYPALIGN_INT, &v, &vn, &n);
		for (int i = 0; i < n; i++)
		{
			if (strcmp(TextDatumGetCString(c[i]), "entity_name") == 0 && !vn[i])
			{
				Oid			relid = DatumGetObjectId(DirectFunctionCall1(regclassin,
																		 CStringGetDatum(TextDatumGetCString(v[i]))));

				v[i] = CStringGetTextDatum(psprintf("%u", relid));
			}
		}
		dims[0] = n;
		args[2] = PointerGetDatum(construct_md_array(v, vn, 1, dims, lbs, TEXTOID, -1,
													 false, TYPALIGN_INT));
	}
	call_writer("SELECT tviews.fdw_insert($1, $2, $3)", 3, types, args, NULL);
	return slot;
}

static void
exec_truncate(List *rels, DropBehavior behavior, bool restart_seqs)
{
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = lfirst(lc);
		const StatusTable *t = pgtv_status_table_of(RelationGetRelid(rel));
		Oid			types[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(t->name)};

		if (!t->can_truncate)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot truncate pg_tviews status table \"%s\"",
							RelationGetRelationName(rel))));
		call_writer("SELECT tviews.fdw_truncate($1)", 1, types, args, NULL);
	}
}

void
pgtv_fdw_modify_routines(FdwRoutine *r)
{
	r->AddForeignUpdateTargets = add_update_targets;
	r->PlanForeignModify = plan_modify;
	r->BeginForeignModify = begin_modify;
	r->ExecForeignInsert = exec_insert;
	r->ExecForeignUpdate = exec_update;
	r->ExecForeignDelete = exec_delete;
	r->IsForeignRelUpdatable = is_updatable;
	r->ExecForeignTruncate = exec_truncate;
}
