/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  The CREATE TABLE tv_x AS SELECT ... convention, and renames that
 *	  would silently stop TVIEW maintenance.
 *
 * In a database with pg_tviews, a top-level CREATE TABLE AS (as sent by a
 * client, not run inside a function) of a permanent table
 * whose name starts with "tv_" creates a TVIEW: the statement is handed to
 * pg_tviews_create() with its query text, and reports "SELECT n" like the
 * statement it replaces.  SELECT INTO, temporary and unlogged tables,
 * other names, and databases without the extension are left alone.
 *
 * The query text is cut out of the statement with PostgreSQL's own
 * scanner: it starts after the first AS keyword outside parentheses and
 * ends before a trailing WITH [NO] DATA.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/scanner.h"
#include "parser/gram.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * The text of the query of a CREATE TABLE ... AS statement, or NULL.
 */
static char *
ctas_query_text(const char *stmt)
{
	core_yyscan_t scanner;
	core_yy_extra_type extra;
	core_YYSTYPE lval;
	YYLTYPE		loc;
	int			depth = 0;
	int			start = -1;
	int			end = strlen(stmt);
	int			last_locs[3] = {-1, -1, -1};
	const char *last_kw[3] = {NULL, NULL, NULL};
	bool		after_as = false;
	char	   *q;

	scanner = scanner_init(stmt, &extra, &ScanKeywords, ScanKeywordTokens);
	for (;;)
	{
		int			tok = core_yylex(&lval, &loc, scanner);
		const char *kw;

		if (tok == 0)
			break;
		/* keyword tokens follow the non-keyword ones in gram.h */
		kw = tok >= ABORT_P ? lval.keyword : NULL;
		if (after_as && start < 0)
			start = loc;
		if (tok == '(')
			depth++;
		else if (tok == ')')
			depth--;
		else if (depth == 0 && start < 0 && kw && strcmp(kw, "as") == 0)
			after_as = true;
		if (tok != ';')
		{
			last_locs[0] = last_locs[1];
			last_locs[1] = last_locs[2];
			last_locs[2] = loc;
			last_kw[0] = last_kw[1];
			last_kw[1] = last_kw[2];
			last_kw[2] = kw;
		}
	}
	scanner_finish(scanner);
	if (start < 0)
		return NULL;

	/* WITH [NO] DATA at the end is part of CREATE TABLE AS, not the query */
	if (last_kw[2] && strcmp(last_kw[2], "data") == 0)
	{
		if (last_kw[1] && strcmp(last_kw[1], "with") == 0)
			end = last_locs[1];
		else if (last_kw[1] && strcmp(last_kw[1], "no") == 0 &&
				 last_kw[0] && strcmp(last_kw[0], "with") == 0)
			end = last_locs[0];
	}
	if (end <= start)
		return NULL;
	q = pnstrdup(stmt + start, end - start);
	return q;
}

static bool
is_tview_ctas(CreateTableAsStmt *ctas)
{
	IntoClause *into = ctas->into;

	return ctas->objtype == OBJECT_TABLE && !ctas->is_select_into &&
		into->rel->relpersistence == RELPERSISTENCE_PERMANENT &&
		strncmp(into->rel->relname, "tv_", 3) == 0 &&
		OidIsValid(get_extension_oid("pg_tviews", true));
}

static void
create_tview_from_ctas(CreateTableAsStmt *ctas, const char *stmt,
					   QueryCompletion *qc)
{
	IntoClause *into = ctas->into;
	char	   *query;
	char	   *name;
	char	   *sql;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	uint64		rows = 0;

	if (into->colNames != NIL || into->options != NIL ||
		into->tableSpaceName != NULL || into->accessMethod != NULL ||
		into->onCommit != ONCOMMIT_NOOP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("CREATE TABLE %s AS with column names, options or a tablespace is not supported for TVIEWs",
						into->rel->relname),
				 errhint("Use plain CREATE TABLE tv_name AS SELECT ..., or pg_tviews_create().")));

	if (into->skipData)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a TVIEW cannot be created WITH NO DATA"),
				 errdetail("A TVIEW always holds the current result of its definition."),
				 errhint("Remove WITH NO DATA, or name the table otherwise than tv_* to create a plain table.")));

	query = ctas_query_text(stmt);
	if (query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("could not find the query of CREATE TABLE %s AS", into->rel->relname)));

	name = into->rel->schemaname ?
		quote_qualified_identifier(into->rel->schemaname, into->rel->relname) :
		pstrdup(quote_identifier(into->rel->relname));
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(query);

	SPI_connect();
	/* pg_tviews_create() lives in the extension's schema */
	if (SPI_execute("SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
					" JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
					" WHERE e.extname = 'pg_tviews'", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "pg_tviews: cannot find the extension's schema");
	sql = psprintf("SELECT %s.pg_tviews_create($1, $2)",
				   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	if (SPI_execute_with_args(sql, 2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_tviews_create failed");
	if (SPI_execute(psprintf("SELECT count(*) FROM %s", name), false, 0) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;

		rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	if (qc)
		SetQueryCompletion(qc, CMDTAG_SELECT, rows);
}

typedef struct RenameTarget
{
	Oid			relid;			/* the renamed relation, or of the column */
	bool		all;			/* a schema: every TVIEW */
	RenameStmt *col;			/* a column rename */
} RenameTarget;

/* What a rename concerns, looked up before it runs (names change). */
static bool
rename_target(Node *parsetree, RenameTarget *target)
{
	Oid			relid = InvalidOid;
	bool		all = false;
	RenameStmt *col = NULL;

	if (!OidIsValid(get_extension_oid("pg_tviews", true)))
		return false;
	if (IsA(parsetree, RenameStmt))
	{
		RenameStmt *stmt = (RenameStmt *) parsetree;

		if (stmt->renameType == OBJECT_SCHEMA)
			all = true;
		else if (stmt->relation != NULL)
		{
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
			if (stmt->renameType == OBJECT_COLUMN && stmt->subname && stmt->newname)
				col = stmt;
		}
	}
	else if (IsA(parsetree, AlterObjectSchemaStmt))
	{
		AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) parsetree;

		if (stmt->relation != NULL)
			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	}
	target->relid = relid;
	target->all = all;
	target->col = col;
	return all || OidIsValid(relid);
}

/*
 * ALTER TABLE ... RENAME COLUMN of a column that TVIEW maintenance names:
 * a column of a TVIEW (its refresh statement selects the backing view's
 * columns by the TVIEW's column names), or a base-table column a lineage
 * rule reads (the decoder emits lineage columns by name, and the rules
 * match them by name).  PostgreSQL's dependency tracking lets such a
 * rename through -- views follow it -- but maintenance would silently
 * stop: refuse it, as PostgreSQL refuses to drop a column a view uses.
 */
static void
check_column_rename(RenameTarget *target)
{
	RenameStmt *stmt = target->col;
	Oid			relid = target->relid;
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	char	   *users = NULL;
	bool		is_tview = false;

	if (stmt == NULL || !OidIsValid(relid))
		return;

	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(stmt->subname);
	SPI_connect();
	if (SPI_execute_with_args("SELECT EXISTS (SELECT FROM tviews.tview WHERE tview::oid = $1),"
							  "       (SELECT string_agg(DISTINCT s.tview::text, ', ')"
							  "          FROM tviews.source s"
							  "         WHERE s.source::oid = $1 AND NOT s.source_is_tview"
							  "           AND (s.source_column = $2::name"
							  "                OR EXISTS (SELECT FROM tviews.tracked k"
							  "                            WHERE k.relid = s.source"
							  "                              AND $2::name = ANY (k.lineage_columns))))",
							  2, argtypes, args, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;

		is_tview = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
		users = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		if (users)
			users = pstrdup(users);
	}
	SPI_finish();

	if (is_tview)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot rename column \"%s\" of TVIEW %s",
						stmt->subname, get_rel_name(relid)),
				 errdetail("A TVIEW's columns are those of its definition."),
				 errhint("Give the column another name in the definition: drop the TVIEW with pg_tviews_drop() and create it again.")));
	if (users)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot rename column \"%s\" of table %s because TVIEWs are maintained through it",
						stmt->subname, get_rel_name(relid)),
				 errdetail("Changes to this column are mapped to keys of: %s.", users),
				 errhint("Drop those TVIEWs with pg_tviews_drop(), rename the column, and create them again.")));
}

/*
 * A rename that went through (check_column_rename() let it) changes
 * names the catalog shows: the definitions (pg_tviews_metadata.definition,
 * which the runbooks run) and the columns each definition uses
 * (pg_tviews_dependencies.columns_used).  Follow it: the definitions are
 * printed again from the backing views, fully qualified, for the TVIEWs
 * the renamed object concerns (all of them for a schema).  The status
 * tables then read stored text, and never wait for a lock on a base
 * table, as printing a view's definition would.  The catalog belongs to
 * the extension's owner, not to whoever renamed: written as the bootstrap
 * superuser, with search_path = pg_catalog, only those rows.
 */
static void
follow_rename(RenameTarget *target)
{
	Oid			relid = target->relid;
	bool		all = target->all;
	RenameStmt *col = target->col;
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	save_nestlevel = NewGUCNestLevel();
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	SPI_connect();
	if (col != NULL)
	{
		Oid			argtypes[3] = {OIDOID, TEXTOID, TEXTOID};
		Datum		args[3] = {ObjectIdGetDatum(relid),
			CStringGetTextDatum(col->subname), CStringGetTextDatum(col->newname)};

		SPI_execute_with_args("UPDATE tviews.source"
							  "   SET columns_used = array_replace(columns_used, $2::name, $3::name)"
							  " WHERE source::oid = $1 AND $2::name = ANY (columns_used)",
							  3, argtypes, args, NULL, false, 0);
	}
	{
		Oid			argtypes[2] = {OIDOID, BOOLOID};
		Datum		args[2] = {ObjectIdGetDatum(relid), BoolGetDatum(all)};

		SPI_execute_with_args("UPDATE tviews.tview t"
							  "   SET definition = rtrim(pg_get_viewdef(t.backing_view), ';')"
							  " WHERE $2 OR t.tview::oid = $1 OR t.backing_view::oid = $1"
							  "    OR EXISTS (SELECT FROM tviews.source s"
							  "                WHERE s.tview = t.tview AND s.source::oid = $1)",
							  2, argtypes, args, NULL, false, 0);
	}
	SPI_finish();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
}

static void
pgtv_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					bool readOnlyTree, ProcessUtilityContext context,
					ParamListInfo params, QueryEnvironment *queryEnv,
					DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	RenameTarget target;
	bool		renaming = false;

	/*
	 * Top-level statements only: pg_tviews_create() itself runs CREATE
	 * TABLE AS from PL/pgSQL.
	 */
	if (context == PROCESS_UTILITY_TOPLEVEL &&
		IsA(parsetree, CreateTableAsStmt) &&
		is_tview_ctas((CreateTableAsStmt *) parsetree))
	{
		CreateTableAsStmt *ctas = (CreateTableAsStmt *) parsetree;
		RangeVar   *rv = ctas->into->rel;

		if (!(ctas->if_not_exists && OidIsValid(RangeVarGetRelid(rv, NoLock, true))))
		{
			const char *stmt = queryString;

			if (pstmt->stmt_location >= 0)
			{
				stmt = queryString + pstmt->stmt_location;
				if (pstmt->stmt_len > 0)
					stmt = pnstrdup(stmt, pstmt->stmt_len);
			}
			create_tview_from_ctas(ctas, stmt, qc);
			return;
		}
	}

	if (IsA(parsetree, RenameStmt) || IsA(parsetree, AlterObjectSchemaStmt))
	{
		renaming = rename_target(parsetree, &target);
		if (renaming)
			check_column_rename(&target);
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (renaming)
		follow_rename(&target);
}

void
pgtv_install_ddl_hook(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pgtv_ProcessUtility;
}
