/* migrations: the numbered schema migrations compiled in from schema/migrations/ by schema/embed.sh.
 * migrations[i].version is strictly increasing; the store applies those it has not yet. */
#ifndef HEARTH_MIGRATIONS_H
#define HEARTH_MIGRATIONS_H

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const unsigned migration_count;

#endif
