/**
 * Refuses to serve as a role that row-level security would not hold: a superuser, a role with
 * BYPASSRLS, or the owner of the tables (an owner is subject to RLS only through FORCE, and
 * could turn it off). Each problem comes with the fix, for the operator to read at startup.
 */
import type { Sql } from './database';

export async function roleProblems(sql: Sql): Promise<string[]> {
  const role = (
    await sql.query<{ name: string; superuser: boolean; bypassrls: boolean }>(
      'SELECT rolname AS name, rolsuper AS superuser, rolbypassrls AS bypassrls FROM pg_roles WHERE rolname = current_user',
    )
  ).rows[0];
  if (!role) return ['DATABASE_URL: cannot read its own role'];
  const problems: string[] = [];
  if (role.superuser) {
    problems.push(`DATABASE_URL: role ${role.name} is a superuser, which row-level security does not apply to; connect as an app role (NOSUPERUSER NOBYPASSRLS), see README "Running on PostgreSQL and S3"`);
  }
  if (role.bypassrls) {
    problems.push(`DATABASE_URL: role ${role.name} has BYPASSRLS; ALTER ROLE ${role.name} NOBYPASSRLS, or connect as an app role`);
  }
  const owned = await sql.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND pg_has_role(current_user, tableowner, 'MEMBER') AND tablename IN ('sessions', 'messages', 'files', 'usage', 'upload_reservations', 'blob_outbox')",
  );
  if (owned.rows.length > 0) {
    problems.push(
      `DATABASE_URL: role ${role.name} owns the tables or is a member of their owner (${owned.rows.map((r) => r.tablename).join(', ')}); run migrations as a separate owner role (DATABASE_MIGRATION_URL) and connect the service as an app role`,
    );
  }
  return problems;
}
