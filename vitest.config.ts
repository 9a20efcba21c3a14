import { defineConfig } from 'vitest/config';

// The PostgreSQL-only files need a database; without one, test/global-setup.ts says they were left out.
const withPostgres = (process.env.INTAKE_TEST_DATABASE_URL ?? '') !== '';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: withPostgres ? [] : ['test/postgres-*.test.ts'],
    globalSetup: ['test/global-setup.ts', 'test/build-admin-page.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Test files start their own servers on their own stores; two at a time suits 2 cores.
    maxWorkers: 2,
  },
});
