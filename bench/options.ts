/**
 * The command-line options of `npm run bench` and `npm run bench:ab`: `--help` prints the
 * command's usage, and an unknown option or a bad value prints what is wrong and the usage, and
 * exits with status 2, instead of a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandLine<T extends Options> {
  values: ReturnType<typeof parseArgs<{ options: T; strict: true }>>['values'];
  /** Stops the command with `message` and the usage (exit status 2). */
  refuse(message: string): never;
}

export function readOptions<T extends Options>(usage: string, options: T, args = process.argv.slice(2)): CommandLine<T> {
  const refuse = (message: string): never => {
    process.stderr.write(`${message}\n\n${usage}\n`);
    process.exit(2);
  };
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  try {
    const { values } = parseArgs({ args, options, strict: true });
    return { values, refuse };
  } catch (error) {
    return refuse((error as Error).message);
  }
}

/** A whole number of at least `min` from an option's text. */
export function wholeNumber(cli: { refuse(message: string): never }, name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) cli.refuse(`--${name} is a whole number of at least ${min}, got ${text}`);
  return value;
}
