/*-------------------------------------------------------------------------
 *
 * relinfo.c
 *	  Per-relation cache of pg_tviews_decoder.
 *
 * Everything the output formats need to know about a relation that does
 * not change from one row to the next -- schema and table names (also
 * pre-escaped for JSON), the row key, the replica identity columns, each
 * column's type name, output function and JSON rendering, and whether the
 * table passes the include/exclude filters -- is computed once per
 * relation and reused for every change.  This is where the decoder wins
 * its speed over plugins that look the catalogs up per row.
 *
 * All lookups happen inside a decoding callback, under the historic
 * snapshot, through the relcache and syscache only.  Entries are marked
 * invalid by relcache invalidations (which decoding replays when it passes
 * DDL in the WAL) and by namespace changes, and rebuilt on next use; the
 * binary format then sends a fresh RELATION message.
 *
 * The cache belongs to one decoding session: it lives in a context under
 * the decoding context and is forgotten at shutdown.  The invalidation
 * callbacks, which cannot be unregistered, are registered once per backend
 * and do nothing while no session is active.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "decoder.h"
#include "pg_tviews/json_render.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "access/genam.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "nodes/value.h"
#include "utils/array.h"

static HTAB *relinfo_hash = NULL;
static MemoryContext relinfo_cxt = NULL;
static bool callbacks_registered = false;

/*
 * Relcache invalidation: forget one relation, or all of them when relid is
 * InvalidOid.
 */
static void
relinfo_invalidate_rel(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	DecoderRelInfo *ri;

	if (relinfo_hash == NULL)
		return;

	if (OidIsValid(relid))
	{
		ri = hash_search(relinfo_hash, &relid, HASH_FIND, NULL);
		if (ri != NULL)
			ri->valid = false;
		return;
	}

	hash_seq_init(&status, relinfo_hash);
	while ((ri = hash_seq_search(&status)) != NULL)
		ri->valid = false;
}

/*
 * A schema was renamed (or otherwise changed): the cached schema names may
 * be stale.  Rare enough to simply invalidate everything.
 */
static void
relinfo_invalidate_syscache(Datum arg, int cacheid, uint32 hashvalue)
{
	relinfo_invalidate_rel(arg, InvalidOid);
}

/*
 * The decoding context is deleted without the shutdown callback when an
 * ERROR ends decoding; the invalidation callbacks, which outlive it, must
 * then not touch the freed hash table.
 */
static void
relinfo_forget(void *arg)
{
	relinfo_hash = NULL;
	relinfo_cxt = NULL;
}

/*
 * Create the cache for a new decoding session, under parent.
 */
void
decoder_relcache_init(MemoryContext parent)
{
	HASHCTL		ctl;
	MemoryContextCallback *cb;

	relinfo_cxt = AllocSetContextCreate(parent, "pg_tviews_decoder relcache",
										ALLOCSET_DEFAULT_SIZES);
	cb = MemoryContextAlloc(relinfo_cxt, sizeof(MemoryContextCallback));
	cb->func = relinfo_forget;
	cb->arg = NULL;
	MemoryContextRegisterResetCallback(relinfo_cxt, cb);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(DecoderRelInfo);
	ctl.hcxt = relinfo_cxt;
	relinfo_hash = hash_create("pg_tviews_decoder relations", 128, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(relinfo_invalidate_rel, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID,
									  relinfo_invalidate_syscache, (Datum) 0);
		callbacks_registered = true;
	}
}

/*
 * Forget the session's cache; its memory goes with the decoding context.
 */
void
decoder_relcache_destroy(void)
{
	if (relinfo_cxt != NULL)
		MemoryContextDelete(relinfo_cxt);	/* relinfo_forget() runs */
	Assert(relinfo_hash == NULL && relinfo_cxt == NULL);
}

/*
 * Mark the columns of an index (by its pg_index row, read through the
 * syscache as decoding requires) as key or identity columns.
 */
static void
mark_index_columns(DecoderRelInfo *ri, Oid indexoid, bool key, bool identity)
{
	HeapTuple	tup;
	Form_pg_index idx;

	if (!OidIsValid(indexoid))
		return;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for index %u", indexoid);
	idx = (Form_pg_index) GETSTRUCT(tup);
	for (int i = 0; i < idx->indnkeyatts; i++)
	{
		AttrNumber	attnum = idx->indkey.values[i];

		if (attnum > 0 && attnum <= ri->natts)
		{
			if (key)
				ri->attrs[attnum - 1].is_key = true;
			if (identity)
				ri->attrs[attnum - 1].is_identity = true;
		}
	}
	ReleaseSysCache(tup);
}

/*
 * (Re)build an entry from the relation as the historic snapshot sees it.
 */
static void
relinfo_build(DecoderRelInfo *ri, Relation rel, const DecoderOptions *opts)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext oldcxt;
	Oid			replidx;
	Oid			pkidx;
	StringInfoData buf;
	bool		first;

	if (ri->cxt == NULL)
		ri->cxt = AllocSetContextCreate(relinfo_cxt,
										"pg_tviews_decoder relation",
										ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(ri->cxt);
	oldcxt = MemoryContextSwitchTo(ri->cxt);

	ri->schema = get_namespace_name(RelationGetNamespace(rel));
	if (ri->schema == NULL)
		elog(ERROR, "cache lookup failed for namespace %u",
			 RelationGetNamespace(rel));
	ri->table = pstrdup(RelationGetRelationName(rel));
	ri->schema_json = decoder_json_quote(ri->schema);
	ri->table_json = decoder_json_quote(ri->table);
	ri->replident = rel->rd_rel->relreplident;
	ri->natts = desc->natts;
	ri->ncolumns = 0;
	ri->attrs = palloc0(sizeof(DecoderAttr) * Max(desc->natts, 1));

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		DecoderAttr *da = &ri->attrs[i];
		Oid			outfunc;
		bool		isvarlena;

		da->dropped = att->attisdropped;
		if (da->dropped)
			continue;
		da->colno = ri->ncolumns++;
		da->attlen = att->attlen;
		da->name = pstrdup(NameStr(att->attname));
		da->name_json = decoder_json_quote(da->name);
		da->typid = att->atttypid;
		da->typmod = att->atttypmod;
		da->type_name = format_type_with_typemod(att->atttypid, att->atttypmod);
		da->type_json = decoder_json_quote(da->type_name);
		da->kind = pgtv_json_kind_for_type(att->atttypid);
		getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
		fmgr_info_cxt(outfunc, &da->outfunc, ri->cxt);
	}

	/*
	 * The replica identity decides which old values reach the WAL; the key
	 * is the identity index, or the primary key when the identity is FULL
	 * or NOTHING.  RelationGetIndexList() fills rd_replidindex and
	 * rd_pkindex without locking the indexes, which is what decoding needs.
	 */
	list_free(RelationGetIndexList(rel));
	replidx = rel->rd_replidindex;
	pkidx = rel->rd_pkindex;
	if (ri->replident == REPLICA_IDENTITY_FULL)
	{
		for (int i = 0; i < ri->natts; i++)
			ri->attrs[i].is_identity = !ri->attrs[i].dropped;
	}
	else if (ri->replident != REPLICA_IDENTITY_NOTHING)
		mark_index_columns(ri, replidx, false, true);
	mark_index_columns(ri, OidIsValid(replidx) ? replidx : pkidx, true, false);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	first = true;
	for (int i = 0; i < ri->natts; i++)
	{
		if (ri->attrs[i].is_key)
		{
			if (!first)
				appendStringInfoChar(&buf, ',');
			appendStringInfoString(&buf, ri->attrs[i].name_json);
			first = false;
		}
	}
	appendStringInfoChar(&buf, ']');
	ri->key_json = buf.data;

	/* what the json format writes for every change of the relation */
	initStringInfo(&buf);
	appendStringInfo(&buf, ",\"schema\":%s,\"table\":%s,\"relid\":%u,\"key\":%s",
					 ri->schema_json, ri->table_json, ri->relid, ri->key_json);
	ri->header_json = buf.data;
	ri->header_len = buf.len;
	for (int i = 0; i < ri->natts; i++)
	{
		DecoderAttr *da = &ri->attrs[i];

		if (da->dropped)
			continue;
		initStringInfo(&buf);
		appendStringInfo(&buf, "{\"name\":%s", da->name_json);
		if (opts->include_types)
			appendStringInfo(&buf, ",\"type\":%s", da->type_json);
		da->prefix_json = buf.data;
		da->prefix_len = buf.len;
	}

	ri->included = decoder_table_matches(opts, ri->schema, ri->table);
	for (int i = 0; i < ri->natts; i++)
	{
		DecoderAttr *da = &ri->attrs[i];

		if (!da->dropped)
			da->is_lineage = decoder_column_is_lineage(opts, ri->schema,
													   ri->table, da->name);
	}
	if (opts->tracked && ri->included)
	{
		List	   *cols = NIL;

		ri->included = decoder_tracked_lookup(ri->relid, &cols);
		for (int i = 0; i < ri->natts; i++)
		{
			DecoderAttr *da = &ri->attrs[i];

			if (!da->dropped && list_member(cols, makeString(da->name)))
				da->is_lineage = true;
		}
	}
	ri->relation_sent = false;
	ri->valid = true;

	MemoryContextSwitchTo(oldcxt);
}

/*
 * The cache entry of a relation, built on first use or after invalidation.
 */
DecoderRelInfo *
decoder_get_relinfo(Relation rel, const DecoderOptions *opts)
{
	Oid			relid = RelationGetRelid(rel);
	DecoderRelInfo *ri;
	bool		found;

	Assert(relinfo_hash != NULL);
	ri = hash_search(relinfo_hash, &relid, HASH_ENTER, &found);
	if (!found)
	{
		ri->cxt = NULL;
		ri->valid = false;
	}
	if (!ri->valid)
		relinfo_build(ri, rel, opts);
	return ri;
}

/*
 * Is this value an on-disk TOAST pointer, i.e. a value the WAL record does
 * not carry because the update left it unchanged?  (Values whose TOAST
 * chunks were written in the same transaction have been reassembled by
 * the reorder buffer and are not external on disk any more.)
 */
bool
decoder_datum_is_unchanged_toast(const DecoderAttr *att, Datum value)
{
	return att->attlen == -1 &&
		VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value));
}

/*
 * Is relid tracked by pg_tviews, i.e. listed in tviews.tracked as the
 * historic snapshot of the change being decoded sees it?  The table is a
 * user_catalog_table precisely so that this read is valid: a TVIEW's base
 * table is tracked from the commit that created the TVIEW onwards, never
 * before, never after its drop.  On success *lineage_columns gets the
 * column names (String nodes) the engine needs besides the key.
 */
bool
decoder_tracked_lookup(Oid relid, List **lineage_columns)
{
	Oid			nsp;
	Oid			catrelid;
	Relation	cat;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	*lineage_columns = NIL;
	nsp = get_namespace_oid("tviews", true);
	if (!OidIsValid(nsp))
		return false;			/* extension not (yet) installed */
	catrelid = get_relname_relid("tracked", nsp);
	if (!OidIsValid(catrelid))
		return false;

	cat = table_open(catrelid, AccessShareLock);
	if (!RelationIsUsedAsCatalogTable(cat))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tviews.tracked is not a user catalog table"),
				 errhint("Reinstall the pg_tviews extension.")));
	scan = systable_beginscan(cat, InvalidOid, false, NULL, 0, NULL);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(cat), &isnull);

		if (isnull || DatumGetObjectId(d) != relid)
			continue;
		found = true;
		d = heap_getattr(tup, 2, RelationGetDescr(cat), &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(d), NAMEOID, NAMEDATALEN,
							  false, TYPALIGN_CHAR, &elems, &nulls, &n);
			for (int i = 0; i < n; i++)
				if (!nulls[i])
					*lineage_columns = lappend(*lineage_columns,
											   makeString(pstrdup(NameStr(*DatumGetName(elems[i])))));
		}
	}
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
	return found;
}
