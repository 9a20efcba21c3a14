let pending: string | null = null;

/** Shows a message at the top of the next view (after a save, say). */
export function flash(message: string): void {
  pending = message;
}

export function takeFlash(): string | null {
  const message = pending;
  pending = null;
  return message;
}
