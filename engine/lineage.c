/*-------------------------------------------------------------------------
 *
 * lineage.c
 *	  Dependency and lineage analysis of a TVIEW's defining query.
 *
 * For every base relation the query reads -- in FROM, in joins, in views
 * and subqueries in FROM, in CTEs, and in sublinks anywhere (such as the
 * correlated `(SELECT jsonb_agg(...) FROM tb_comment c WHERE c.fk_post =
 * p.pk_post)` of a read model) -- this decides how a changed row of that
 * relation maps to the TVIEW keys whose rows must be recomputed:
 *
 *	 root    the relation provides the key column itself: the changed row's
 *	         key value (old and new) is the TVIEW key;
 *	 child   one of its columns is equal to the key through a chain of
 *	         equalities (c.fk_post = p.pk_post): that column's old and new
 *	         values are TVIEW keys;
 *	 parent  one of its columns is equal to a column the TVIEW exposes
 *	         (u.pk_user = p.fk_user, and the TVIEW has fk_user): the TVIEW
 *	         rows whose exposed column holds the old or new value;
 *	 full    nothing derivable: any change refreshes the whole TVIEW.
 *
 * Equalities are taken from AND-ed conditions of WHERE clauses and inner
 * join conditions (never from under OR or NOT, never of FULL joins), at
 * every query level, with outer references of correlated subqueries
 * resolved to the outer query's columns; they group equal columns (a
 * union-find).  An outer join's condition restricts only its nullable
 * side, so there an equality between a nullable-side and a preserved-side
 * column is a one-way link: the nullable side inherits what the preserved
 * column is (the key, a selected column), never the reverse.  Columns are
 * followed through join aliases, subqueries, views and non-recursive CTEs
 * down to the base table column.  A relation with a column in the key's
 * group is a child; with a column equal -- through an actual equality, so
 * never NULL in a contributing row -- to a column the TVIEW selects, a
 * parent.  This is conservative: a relation is child or parent only when
 * each of its rows contributes to TVIEW rows through such an equality;
 * everything else is "full", which is always correct.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

/* One occurrence of a base relation somewhere in the query tree. */
typedef struct RelOcc
{
	int			id;
	Query	   *query;			/* the query whose range table holds it */
	Index		rtindex;
	Oid			relid;
	int			depth;			/* 0 = top-level FROM */
	const char *where;			/* "FROM", "subquery", "sublink", "CTE" */
	Bitmapset  *used;			/* attnos referenced anywhere */
} RelOcc;

/* A column of a relation occurrence: a union-find node. */
typedef struct ColNode
{
	int			occ;
	AttrNumber	attno;
	int			parent;
} ColNode;

typedef struct Analysis
{
	List	   *occs;			/* of RelOcc * */
	ColNode    *nodes;
	int			nnodes;
	int			maxnodes;
	List	   *edges_from;		/* int node: preserved side of an outer join */
	List	   *edges_to;		/* int node: its nullable side */
} Analysis;

static void walk_query(Analysis *a, Query *q, List *ancestors, int depth,
					   const char *where);

/*
 * A TVIEW can only read relations whose changes logical decoding sees:
 * permanent, logged tables.  Anything else would leave it silently stale.
 */
static void
check_source_relation(Oid relid)
{
	char		relkind = get_rel_relkind(relid);
	char		persistence = get_rel_persistence(relid);
	char	   *name = get_rel_name(relid);

	if (persistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("TVIEW definitions cannot read temporary table \"%s\"", name),
				 errdetail("A TVIEW outlives the session, and logical decoding does not see temporary tables.")));
	if (persistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("TVIEW definitions cannot read unlogged table \"%s\"", name),
				 errdetail("Changes to unlogged tables are not written to the WAL, so the TVIEW would never see them."),
				 errhint("ALTER TABLE %s SET LOGGED.", quote_identifier(name))));
	if (relkind == RELKIND_MATVIEW || relkind == RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("TVIEW definitions cannot read %s \"%s\"",
						relkind == RELKIND_MATVIEW ? "materialized view" : "foreign table",
						name),
				 errdetail("Its changes do not reach logical decoding, so the TVIEW would never see them."),
				 errhint("Read the underlying tables instead.")));
	if (relkind == RELKIND_SEQUENCE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("TVIEW definitions cannot read sequence \"%s\"", name),
				 errdetail("Sequence advances are not decoded as row changes, so the TVIEW would never see them.")));
	if (IsCatalogRelationOid(relid) ||
		strcmp(get_namespace_name(get_rel_namespace(relid)), "information_schema") == 0 ||
		strcmp(get_namespace_name(get_rel_namespace(relid)), "tviews") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("TVIEW definitions cannot read catalog relation \"%s\"", name),
				 errdetail("Changes to system catalogs and to pg_tviews' own catalog are not decoded as row changes.")));
	if (relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("TVIEW definitions cannot read partitioned table \"%s\" yet", name),
				 errdetail("Logical decoding reports changes per partition; pg_tviews does not map them to the partitioned table yet."),
				 errhint("Read the partitions explicitly (e.g. UNION ALL in a subquery in FROM).")));
}

/* ---------- union-find over columns ---------- */

static int
node_for(Analysis *a, int occ, AttrNumber attno)
{
	for (int i = 0; i < a->nnodes; i++)
	{
		if (a->nodes[i].occ == occ && a->nodes[i].attno == attno)
			return i;
	}
	if (a->nnodes == a->maxnodes)
	{
		a->maxnodes = Max(16, a->maxnodes * 2);
		a->nodes = a->nodes ? repalloc(a->nodes, sizeof(ColNode) * a->maxnodes)
			: palloc(sizeof(ColNode) * a->maxnodes);
	}
	a->nodes[a->nnodes].occ = occ;
	a->nodes[a->nnodes].attno = attno;
	a->nodes[a->nnodes].parent = a->nnodes;
	return a->nnodes++;
}

static int
node_find(Analysis *a, int n)
{
	while (a->nodes[n].parent != n)
	{
		a->nodes[n].parent = a->nodes[a->nodes[n].parent].parent;
		n = a->nodes[n].parent;
	}
	return n;
}

static void
node_union(Analysis *a, int x, int y)
{
	x = node_find(a, x);
	y = node_find(a, y);
	if (x != y)
		a->nodes[x].parent = y;
}

static RelOcc *
occ_lookup(Analysis *a, Query *q, Index rtindex)
{
	ListCell   *lc;

	foreach(lc, a->occs)
	{
		RelOcc	   *o = lfirst(lc);

		if (o->query == q && o->rtindex == rtindex)
			return o;
	}
	return NULL;
}

/* ---------- resolving a Var to a base column ---------- */

/*
 * The ancestors list of a query nested in q.  A new list: lcons() would
 * modify the caller's list in place.
 */
static List *
push_ancestor(Query *q, List *ancestors)
{
	return lcons(q, list_copy(ancestors));
}

static Node *
strip_relabel(Node *n)
{
	while (n && IsA(n, RelabelType))
		n = (Node *) ((RelabelType *) n)->arg;
	return n;
}

/*
 * Follow a Var of query q (whose enclosing queries, innermost first, are
 * ancestors) through joins, subqueries and CTEs to a base column; -1 if it
 * does not end in a plain column of a base relation.
 */
static int
resolve_var(Analysis *a, Query *q, List *ancestors, Var *var)
{
	RangeTblEntry *rte;

	if (var->varlevelsup > 0)
	{
		if ((int) var->varlevelsup > list_length(ancestors))
			return -1;
		q = list_nth(ancestors, var->varlevelsup - 1);
		ancestors = list_copy_tail(ancestors, var->varlevelsup);
		var = copyObject(var);
		var->varlevelsup = 0;
	}
	if (var->varattno <= 0 || var->varno < 1 ||
		var->varno > list_length(q->rtable))
		return -1;
	rte = rt_fetch(var->varno, q->rtable);

	switch (rte->rtekind)
	{
		case RTE_RELATION:
			{
				RelOcc	   *o = occ_lookup(a, q, var->varno);

				return o ? node_for(a, o->id, var->varattno) : -1;
			}
		case RTE_SUBQUERY:
			{
				TargetEntry *tle = get_tle_by_resno(rte->subquery->targetList,
													var->varattno);
				Node	   *e = tle ? strip_relabel((Node *) tle->expr) : NULL;

				if (e && IsA(e, Var))
					return resolve_var(a, rte->subquery, push_ancestor(q, ancestors),
									   (Var *) e);
				return -1;
			}
		case RTE_JOIN:
			{
				Node	   *e;

				if (var->varattno > list_length(rte->joinaliasvars))
					return -1;
				e = strip_relabel(list_nth(rte->joinaliasvars, var->varattno - 1));
				if (e && IsA(e, Var))
					return resolve_var(a, q, ancestors, (Var *) e);
				return -1;
			}
		case RTE_CTE:
			{
				Query	   *cq = q;
				List	   *canc = ancestors;
				ListCell   *lc;

				for (int i = 0; i < (int) rte->ctelevelsup; i++)
				{
					if (canc == NIL)
						return -1;
					cq = linitial(canc);
					canc = list_copy_tail(canc, 1);
				}
				if (rte->self_reference)
					return -1;
				foreach(lc, cq->cteList)
				{
					CommonTableExpr *cte = lfirst(lc);

					if (strcmp(cte->ctename, rte->ctename) == 0 &&
						!cte->cterecursive && IsA(cte->ctequery, Query))
					{
						Query	   *ctq = (Query *) cte->ctequery;
						TargetEntry *tle = get_tle_by_resno(ctq->targetList,
															var->varattno);
						Node	   *e = tle ? strip_relabel((Node *) tle->expr) : NULL;

						if (e && IsA(e, Var))
							return resolve_var(a, ctq, push_ancestor(cq, canc), (Var *) e);
					}
				}
				return -1;
			}
		default:
			return -1;
	}
}

/* ---------- collecting equalities ---------- */

typedef struct QualCtx
{
	Analysis   *a;
	Query	   *q;
	List	   *ancestors;
} QualCtx;

/*
 * How the conditions being read restrict rows.  WHERE and inner join
 * conditions restrict every row that contributes: equal columns join one
 * group.  An outer join's condition restricts only its nullable side: a
 * preserved-side row contributes whether it matches or not.  There, an
 * equality between a nullable-side column t and a preserved-side (or
 * outer) column f only says "t's rows contribute where t = f": a directed
 * edge f -> t; equalities among nullable-side columns still join groups,
 * and those among preserved-side columns say nothing.
 */
typedef struct QualScope
{
	bool		outer;			/* an outer join's ON condition */
	Bitmapset  *nullable;		/* range table indexes of its nullable side */
} QualScope;

static bool
var_is_nullable(QualScope *scope, Var *v)
{
	return v->varlevelsup == 0 && bms_is_member(v->varno, scope->nullable);
}

/* An AND-ed conjunct "x = y" between two columns. */
static void
add_equalities(QualCtx *c, Node *qual, QualScope *scope)
{
	if (qual == NULL)
		return;
	if (IsA(qual, List))
	{
		ListCell   *lc;

		foreach(lc, (List *) qual)
			add_equalities(c, lfirst(lc), scope);
		return;
	}
	if (IsA(qual, BoolExpr) && ((BoolExpr *) qual)->boolop == AND_EXPR)
	{
		add_equalities(c, (Node *) ((BoolExpr *) qual)->args, scope);
		return;
	}
	if (IsA(qual, OpExpr) && list_length(((OpExpr *) qual)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) qual;
		char	   *opname = get_opname(op->opno);
		Node	   *l = strip_relabel(linitial(op->args));
		Node	   *r = strip_relabel(lsecond(op->args));
		int			x;
		int			y;

		if (!opname || strcmp(opname, "=") != 0 || !IsA(l, Var) || !IsA(r, Var))
			return;
		x = resolve_var(c->a, c->q, c->ancestors, (Var *) l);
		y = resolve_var(c->a, c->q, c->ancestors, (Var *) r);
		if (x < 0 || y < 0)
			return;
		if (!scope || !scope->outer)
			node_union(c->a, x, y);
		else
		{
			bool		ln = var_is_nullable(scope, (Var *) l);
			bool		rn = var_is_nullable(scope, (Var *) r);

			if (ln && rn)
				node_union(c->a, x, y);
			else if (ln != rn)
			{
				c->a->edges_from = lappend_int(c->a->edges_from, ln ? y : x);
				c->a->edges_to = lappend_int(c->a->edges_to, ln ? x : y);
			}
		}
	}
}

/* Range table indexes under a join tree node (joins included). */
static Bitmapset *
jointree_rtindexes(Node *jt)
{
	Bitmapset  *result = NULL;

	if (jt == NULL)
		return NULL;
	if (IsA(jt, RangeTblRef))
		return bms_make_singleton(((RangeTblRef *) jt)->rtindex);
	if (IsA(jt, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) jt;

		result = bms_union(jointree_rtindexes(j->larg), jointree_rtindexes(j->rarg));
		if (j->rtindex > 0)
			result = bms_add_member(result, j->rtindex);
		return result;
	}
	if (IsA(jt, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) jt)->fromlist)
			result = bms_union(result, jointree_rtindexes(lfirst(lc)));
	}
	return result;
}

/* Conditions of the join tree; FULL joins contribute nothing. */
static void
add_jointree_equalities(QualCtx *c, Node *jt)
{
	if (jt == NULL)
		return;
	if (IsA(jt, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) jt)->fromlist)
			add_jointree_equalities(c, lfirst(lc));
		add_equalities(c, ((FromExpr *) jt)->quals, NULL);
	}
	else if (IsA(jt, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) jt;
		QualScope	scope = {false, NULL};

		add_jointree_equalities(c, j->larg);
		add_jointree_equalities(c, j->rarg);
		switch (j->jointype)
		{
			case JOIN_INNER:
				add_equalities(c, j->quals, NULL);
				break;
			case JOIN_LEFT:
				scope.outer = true;
				scope.nullable = jointree_rtindexes(j->rarg);
				add_equalities(c, j->quals, &scope);
				break;
			case JOIN_RIGHT:
				scope.outer = true;
				scope.nullable = jointree_rtindexes(j->larg);
				add_equalities(c, j->quals, &scope);
				break;
			default:
				break;			/* FULL: restricts nothing */
		}
	}
}

/* ---------- walking the query tree ---------- */

typedef struct WalkCtx
{
	Analysis   *a;
	Query	   *q;
	List	   *ancestors;
	int			depth;
} WalkCtx;

/*
 * Find sublinks (recursing into their queries) and note every column
 * referenced directly on a base relation of this query level.
 */
static bool
walk_expr(Node *node, WalkCtx *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
	{
		SubLink    *sl = (SubLink *) node;

		walk_expr(sl->testexpr, w);
		walk_query(w->a, (Query *) sl->subselect, push_ancestor(w->q, w->ancestors),
				   w->depth + 1, "sublink");
		return false;
	}
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		if (v->varlevelsup == 0 && v->varattno > 0)
		{
			RelOcc	   *o = occ_lookup(w->a, w->q, v->varno);

			if (o)
				o->used = bms_add_member(o->used, v->varattno);
		}
		return false;
	}
	if (IsA(node, Query))
		return false;			/* subqueries are walked by walk_query */
	return expression_tree_walker(node, walk_expr, (void *) w);
}

static void
walk_query(Analysis *a, Query *q, List *ancestors, int depth,
		   const char *where)
{
	ListCell   *lc;
	Index		rti = 0;
	WalkCtx		w = {a, q, ancestors, depth};
	QualCtx		c = {a, q, ancestors};

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if (rte->rtekind == RTE_RELATION)
		{
			RelOcc	   *o = palloc0(sizeof(RelOcc));

			check_source_relation(rte->relid);

			o->id = list_length(a->occs);
			o->query = q;
			o->rtindex = rti;
			o->relid = rte->relid;
			o->depth = depth;
			o->where = where;
			a->occs = lappend(a->occs, o);
		}
	}
	rti = 0;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if (rte->rtekind == RTE_SUBQUERY)
			walk_query(a, rte->subquery, push_ancestor(q, ancestors), depth + 1,
					   "subquery");
	}
	foreach(lc, q->cteList)
	{
		CommonTableExpr *cte = lfirst(lc);

		if (IsA(cte->ctequery, Query))
			walk_query(a, (Query *) cte->ctequery, push_ancestor(q, ancestors),
					   depth + 1, "CTE");
	}

	/* expressions of this level: sublinks and column uses */
	query_tree_walker(q, walk_expr, (void *) &w,
					  QTW_IGNORE_RT_SUBQUERIES | QTW_IGNORE_CTE_SUBQUERIES |
					  QTW_IGNORE_JOINALIASES);

	add_jointree_equalities(&c, (Node *) q->jointree);
}

/* ---------- validation ---------- */

static void
reject(const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("TVIEW definitions cannot use %s", what),
			 errhint("%s", hint)));
}

/*
 * What gives a different result each time it is evaluated without being
 * volatile: the transaction's or statement's time (now(), CURRENT_DATE,
 * ... are stable), transaction ids and snapshots, the backend's pid,
 * the session's schema and settings (the engine's session is not the
 * reader's), and TABLESAMPLE.  (CURRENT_USER is allowed: refreshes run as
 * the owner, as a materialized view's do.)  A TVIEW row computed with them would
 * never equal its definition when read later.
 */
static bool
nondeterministic_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr))
	{
		Oid			f = ((FuncExpr *) node)->funcid;

		if (f == F_NOW || f == F_TRANSACTION_TIMESTAMP || f == F_STATEMENT_TIMESTAMP ||
			f == F_TXID_CURRENT || f == F_TXID_CURRENT_IF_ASSIGNED ||
			f == F_TXID_CURRENT_SNAPSHOT || f == F_PG_CURRENT_XACT_ID ||
			f == F_PG_CURRENT_XACT_ID_IF_ASSIGNED || f == F_PG_CURRENT_SNAPSHOT ||
			f == F_PG_BACKEND_PID || f == F_PG_TRIGGER_DEPTH ||
			f == F_PG_CONF_LOAD_TIME || f == F_PG_POSTMASTER_START_TIME ||
			f == F_CURRENT_SETTING_TEXT || f == F_CURRENT_SETTING_TEXT_BOOL)
		{
			*(const char **) context = psprintf("%s()", get_func_name(f));
			return true;
		}
	}
	else if (IsA(node, SQLValueFunction))
	{
		switch (((SQLValueFunction *) node)->op)
		{
			case SVFOP_CURRENT_DATE:
			case SVFOP_CURRENT_TIME:
			case SVFOP_CURRENT_TIME_N:
			case SVFOP_CURRENT_TIMESTAMP:
			case SVFOP_CURRENT_TIMESTAMP_N:
			case SVFOP_LOCALTIME:
			case SVFOP_LOCALTIME_N:
			case SVFOP_LOCALTIMESTAMP:
			case SVFOP_LOCALTIMESTAMP_N:
				*(const char **) context = "CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP or LOCALTIMESTAMP";
				return true;
			case SVFOP_CURRENT_SCHEMA:
				/* the engine's search_path is not the reader's */
				*(const char **) context = "CURRENT_SCHEMA";
				return true;
			default:
				break;
		}
	}
	else if (IsA(node, RangeTblEntry))
	{
		if (((RangeTblEntry *) node)->tablesample != NULL)
		{
			*(const char **) context = "TABLESAMPLE";
			return true;
		}
		return false;
	}
	else if (IsA(node, Query))
		return query_tree_walker((Query *) node, nondeterministic_walker, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, nondeterministic_walker, context);
}

/*
 * Parse, analyse and rewrite (expanding views) a TVIEW definition, and
 * refuse what cannot be maintained row by row.
 */
static Query *
analyse_definition(const char *sql)
{
	List	   *raw;
	List	   *queries;
	Query	   *q;
	RawStmt    *rs;

	raw = pg_parse_query(sql);
	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("a TVIEW definition must be exactly one SELECT statement")));
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("a TVIEW definition must be a SELECT statement")));

	queries = pg_analyze_and_rewrite_fixedparams(rs, sql, NULL, 0, NULL);
	if (list_length(queries) != 1)
		elog(ERROR, "rewriting a SELECT gave %d queries", list_length(queries));
	q = linitial_node(Query, queries);

	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("a TVIEW definition must be a SELECT statement")));
	if (q->setOperations)
		reject("UNION, INTERSECT or EXCEPT at the top level",
			   "Wrap the set operation in a subquery in FROM, or define one TVIEW per branch.");
	if (q->limitCount || q->limitOffset)
		reject("LIMIT or OFFSET", "Row-by-row maintenance needs every row to depend only on its own key.");
	if (q->hasWindowFuncs)
		reject("window functions at the top level",
			   "Compute window functions in a regular view over the TVIEW.");
	if (q->rowMarks)
		reject("FOR UPDATE or FOR SHARE", "Remove the locking clause.");
	if (q->hasModifyingCTE)
		reject("data-modifying statements in WITH", "Use a plain SELECT.");
	if (contain_volatile_functions((Node *) q))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("TVIEW definitions cannot call volatile functions"),
				 errdetail("A TVIEW row must be recomputable with the same result at any time."),
				 errhint("Replace functions such as random(), now() or clock_timestamp(), or mark your own functions STABLE or IMMUTABLE if they are.")));
	{
		const char *what = NULL;

		if (query_tree_walker(q, nondeterministic_walker, &what, QTW_EXAMINE_RTES_BEFORE))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("TVIEW definitions cannot use %s", what),
					 errdetail("A TVIEW row must be recomputable with the same result at any time and in any session; this gives another result in another transaction or session."),
					 errhint("Store such a value in a base table column, or compute it when reading the TVIEW.")));
	}
	return q;
}

/* ---------- the SQL-callable analysis ---------- */

PG_FUNCTION_INFO_V1(pg_tviews_analyze);

/*
 * pg_tviews_analyze(query text, key name)
 *	 RETURNS TABLE (source regclass, rule text, source_column name,
 *	                tview_column name, columns_used name[], location text)
 *
 * One row per occurrence of a base relation in the definition.  Raises
 * the definition errors above, and an error when the key is not a plain
 * column of a base table in the select list.
 */
Datum
pg_tviews_analyze(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *key = NameStr(*PG_GETARG_NAME(1));
	Query	   *q;
	Analysis	a = {0};
	TargetEntry *keytle = NULL;
	int			keynode;
	int			keyclass;
	ListCell   *lc;
	char	  **exposed;
	bool	   *keyish;
	bool	   *linked;
	int		   *first_occ;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	q = analyse_definition(sql);
	walk_query(&a, q, NIL, 0, "FROM");

	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (!tle->resjunk && tle->resname && strcmp(tle->resname, key) == 0)
		{
			if (keytle != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_AMBIGUOUS_COLUMN),
						 errmsg("key column \"%s\" appears more than once in the TVIEW definition", key)));
			keytle = tle;
		}
	}
	if (keytle == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("key column \"%s\" is not in the TVIEW definition's select list", key),
				 errhint("Select the key (by default pk_<entity>, e.g. pk_post for tv_post), or name another column as the key.")));
	keynode = -1;
	if (IsA(strip_relabel((Node *) keytle->expr), Var))
		keynode = resolve_var(&a, q, NIL, (Var *) strip_relabel((Node *) keytle->expr));
	if (keynode < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("key column \"%s\" must be a plain column of a table in the query", key),
				 errhint("Select the root table's primary key unchanged, e.g. p.pk_post, not an expression.")));

	/*
	 * The TVIEW columns that are plain base columns.  Resolve them all
	 * first: resolution may add nodes.
	 */
	{
		List	   *exp_nodes = NIL;
		List	   *exp_names = NIL;
		ListCell   *ln;
		bool		changed = true;

		foreach(lc, q->targetList)
		{
			TargetEntry *tle = lfirst(lc);
			Node	   *e = strip_relabel((Node *) tle->expr);

			if (!tle->resjunk && tle->resname && IsA(e, Var))
			{
				int			n = resolve_var(&a, q, NIL, (Var *) e);

				if (n >= 0)
				{
					exp_nodes = lappend_int(exp_nodes, n);
					exp_names = lappend(exp_names, tle->resname);
				}
			}
		}

		/* per group: exposed name, the key's, linked by an equality */
		exposed = palloc0(sizeof(char *) * Max(a.nnodes, 1));
		keyish = palloc0(sizeof(bool) * Max(a.nnodes, 1));
		linked = palloc0(sizeof(bool) * Max(a.nnodes, 1));
		first_occ = palloc(sizeof(int) * Max(a.nnodes, 1));
		for (int i = 0; i < a.nnodes; i++)
			first_occ[i] = -1;
		for (int i = 0; i < a.nnodes; i++)
		{
			int			g = node_find(&a, i);

			if (first_occ[g] < 0)
				first_occ[g] = a.nodes[i].occ;
			else if (first_occ[g] != a.nodes[i].occ)
				linked[g] = true;	/* columns of two relations are equal */
		}
		forboth(lc, exp_nodes, ln, exp_names)
		{
			int			g = node_find(&a, lfirst_int(lc));

			if (exposed[g] == NULL)
				exposed[g] = lfirst(ln);
		}
		keyclass = node_find(&a, keynode);
		keyish[keyclass] = true;

		/* outer joins: what the preserved side is, the nullable side gets */
		while (changed)
		{
			ListCell   *lf;
			ListCell   *lt;

			changed = false;
			forboth(lf, a.edges_from, lt, a.edges_to)
			{
				int			f = node_find(&a, lfirst_int(lf));
				int			t = node_find(&a, lfirst_int(lt));

				if (!linked[t])
				{
					linked[t] = true;
					changed = true;
				}
				if (keyish[f] && !keyish[t])
				{
					keyish[t] = true;
					changed = true;
				}
				if (exposed[f] && !exposed[t])
				{
					exposed[t] = exposed[f];
					changed = true;
				}
			}
		}
	}

	foreach(lc, a.occs)
	{
		RelOcc	   *o = lfirst(lc);
		const char *rule = "full";
		char	   *srccol = NULL;
		const char *tvcol = NULL;
		Datum		values[6];
		bool		nulls[6] = {0};
		char		relkind = get_rel_relkind(o->relid);
		Datum	   *used;
		int			nused = 0;
		int			attno;

		/* only tables carry changes; anything else has no lineage */
		if (relkind != RELKIND_RELATION)
			continue;

		if (a.nodes[keynode].occ == o->id)
		{
			rule = "root";
			srccol = get_attname(o->relid, a.nodes[keynode].attno, false);
			tvcol = key;
		}
		else
		{
			/* child: a column equal to the key */
			for (int i = 0; i < a.nnodes && srccol == NULL; i++)
			{
				if (a.nodes[i].occ == o->id && keyish[node_find(&a, i)])
				{
					rule = "child";
					srccol = get_attname(o->relid, a.nodes[i].attno, false);
					tvcol = key;
				}
			}

			/*
			 * parent: a column equal (by a real equality, so never NULL in
			 * a contributing row) to a column the TVIEW selects
			 */
			for (int i = 0; i < a.nnodes && srccol == NULL; i++)
			{
				int			g = node_find(&a, i);

				if (a.nodes[i].occ == o->id && exposed[g] != NULL && linked[g])
				{
					rule = "parent";
					srccol = get_attname(o->relid, a.nodes[i].attno, false);
					tvcol = exposed[g];
				}
			}
		}
		used = palloc(sizeof(Datum) * (bms_num_members(o->used) + 1));
		attno = -1;
		while ((attno = bms_next_member(o->used, attno)) >= 0)
		{
			char	   *name = get_attname(o->relid, attno, true);

			if (name)
				used[nused++] = CStringGetDatum(name);
		}
		if (srccol)
		{
			bool		have = false;

			for (int i = 0; i < nused; i++)
				if (strcmp(DatumGetCString(used[i]), srccol) == 0)
					have = true;
			if (!have)
				used[nused++] = CStringGetDatum(srccol);
		}
		for (int i = 0; i < nused; i++)
		{
			Name		nm = palloc0(NAMEDATALEN);

			namestrcpy(nm, DatumGetCString(used[i]));
			used[i] = NameGetDatum(nm);
		}

		values[0] = ObjectIdGetDatum(o->relid);
		values[1] = CStringGetTextDatum(rule);
		if (srccol)
			values[2] = CStringGetDatum(srccol);
		else
			nulls[2] = true;
		if (tvcol)
		{
			Name		nm = palloc0(NAMEDATALEN);

			namestrcpy(nm, tvcol);
			values[3] = NameGetDatum(nm);
		}
		else
			nulls[3] = true;
		if (srccol)
		{
			Name		nm = palloc0(NAMEDATALEN);

			namestrcpy(nm, srccol);
			values[2] = NameGetDatum(nm);
		}
		values[4] = PointerGetDatum(construct_array(used, nused, NAMEOID,
													NAMEDATALEN, false,
													TYPALIGN_CHAR));
		values[5] = CStringGetTextDatum(psprintf("%s, depth %d", o->where, o->depth));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pg_tviews_output_columns);

/*
 * tviews.output_columns(query text) RETURNS name[]
 *
 * The select-list column names of a definition (after the same checks as
 * pg_tviews_analyze), so that SQL can choose a default key.
 */
Datum
pg_tviews_output_columns(PG_FUNCTION_ARGS)
{
	Query	   *q = analyse_definition(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	Datum	   *names = palloc(sizeof(Datum) * (list_length(q->targetList) + 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (!tle->resjunk && tle->resname)
		{
			Name		nm = palloc0(NAMEDATALEN);

			namestrcpy(nm, tle->resname);
			names[n++] = NameGetDatum(nm);
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(names, n, NAMEOID, NAMEDATALEN,
										  false, TYPALIGN_CHAR));
}
