/** A visitor's session (collector.md §6). */
export interface Session {
  id: string;
  profile: { id: string } | null;
  metadata: {
    time: { insert: string; update: string };
    channel: string;
    status: 'started' | 'active' | 'ended';
  };
  context: { ip: string | null; [key: string]: unknown };
  device: Record<string, unknown>;
  os: Record<string, unknown>;
  app: Record<string, unknown>;
}

export function newSession(id: string, profileId: string, now: string, ip: string | null, channel: string): Session {
  return {
    id,
    profile: { id: profileId },
    metadata: { time: { insert: now, update: now }, channel, status: 'started' },
    context: { ip },
    device: {},
    os: {},
    app: {},
  };
}
