import pg from 'pg';

/** Says plainly which halves of the suite run, and fails early if the database is unreachable. */
export default async function setup(): Promise<void> {
  const url = process.env.INTAKE_TEST_DATABASE_URL;
  if (url === undefined || url === '') {
    console.log(
      '\n[intake] PostgreSQL half SKIPPED: INTAKE_TEST_DATABASE_URL is not set; only the SQLite half runs\n         (test/postgres-*.test.ts left out).\n' +
        '         Set it (e.g. postgres://postgres@127.0.0.1:5432/test) to run both; .ci/run does.\n',
    );
    return;
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.end();
  console.log(`\n[intake] PostgreSQL half runs against ${new URL(url).host}${new URL(url).pathname}.\n`);
}
