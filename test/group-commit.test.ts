import { describe, expect, it } from 'vitest';
import { GroupCommitter } from '../src/store/group-commit.js';

/** The committer's own rules, with a flush function standing in for a store's transaction. */
describe('GroupCommitter', () => {
  class ContentFailure extends Error {}
  class Unavailable extends Error {}

  /** Submits items in one turn, so that they go in one flush; settles each as ok or its error's name. */
  async function run(flushBatch: (items: number[]) => Promise<number[]>, items: number[]) {
    const committer = new GroupCommitter(flushBatch, 512, undefined, 1, (e) => e instanceof ContentFailure);
    const outcomes = await Promise.allSettled(items.map((i) => committer.submit(i)));
    return outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).constructor.name));
  }

  it('a flush that fails on one item is tried item by item, in order: that one fails alone', async () => {
    const flushed: number[][] = [];
    const outcomes = await run(async (items) => {
      flushed.push(items);
      if (items.includes(3)) throw new ContentFailure();
      return items.map((i) => i * 10);
    }, [1, 2, 3, 4]);
    expect(outcomes).toEqual([10, 20, 'ContentFailure', 40]);
    expect(flushed).toEqual([[1, 2, 3, 4], [1], [2], [3], [4]]);
  });

  it('the store becoming unavailable meanwhile fails the rest at once, without trying each', async () => {
    const flushed: number[][] = [];
    const outcomes = await run(async (items) => {
      flushed.push(items);
      if (items.length > 1) throw new ContentFailure();
      if (items[0] === 2) throw new Unavailable();
      return items.map((i) => i * 10);
    }, [1, 2, 3, 4]);
    expect(outcomes).toEqual([10, 'Unavailable', 'Unavailable', 'Unavailable']);
    expect(flushed).toEqual([[1, 2, 3, 4], [1], [2]]);
  });

  it('a flush that fails otherwise fails every item, and is not tried again', async () => {
    const flushed: number[][] = [];
    const outcomes = await run(async (items) => {
      flushed.push(items);
      throw new Unavailable();
    }, [1, 2, 3]);
    expect(outcomes).toEqual(['Unavailable', 'Unavailable', 'Unavailable']);
    expect(flushed).toEqual([[1, 2, 3]]);
  });
});
