import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Test files start their own servers on their own temp data dirs; two at a time suits 2 cores.
    maxWorkers: 2,
  },
});
