/** What the aws action tests share: the IAM fake, a provider client signing with test credentials, and plan comparison. */
import type { PlannedCall } from "../../../src/net/api-call.ts";
import type { AwsClient } from "../../../src/actions/aws/client.ts";
import { awsProvider } from "../../../src/actions/aws/provider.ts";
import type { FakeRequest } from "../../helpers/fake-api.ts";
import { actionContext, providerContext } from "../../helpers/action-context.ts";
import { FakeIam, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, formOf } from "../../helpers/fakes/aws.ts";
import type { ActionContext } from "../../../src/plugin/action.ts";
import type { Clock } from "../../../src/util/clock.ts";

export interface AwsSetup {
  readonly fake: FakeIam;
  readonly client: AwsClient;
  readonly ctx: ActionContext;
  /** Another client on the same fake, as a restarted agent or another replica would have. */
  fresh(): { client: AwsClient; ctx: ActionContext };
  close(): Promise<void>;
}

export async function awsSetup(opts: { config?: Record<string, unknown>; clock?: Clock } = {}): Promise<AwsSetup> {
  const fake = new FakeIam();
  const base = await fake.start();
  const closers: (() => Promise<void>)[] = [];
  const make = () => {
    const pctx = providerContext("aws", opts.clock);
    const config = awsProvider.configSchema.parse({ endpoint: base, credentials: { access_key_id: TEST_ACCESS_KEY_ID, secret_access_key: TEST_SECRET_ACCESS_KEY }, ...opts.config });
    const client = awsProvider.create(config, pctx);
    const ctx = actionContext(client, opts.clock);
    closers.push(() => pctx.http.close(), () => ctx.http.close());
    return { client, ctx };
  };
  const first = make();
  return {
    fake,
    ...first,
    fresh: make,
    close: async () => {
      await fake.stop();
      for (const c of closers) await c();
    },
  };
}

/** The comparable part of a planned call: method, URL and the form parameters. */
export function plannedShape(p: PlannedCall): { method: string; url: string; body: unknown } {
  return { method: p.method, url: p.url, body: p.body };
}

/** The same shape of a request the fake received. */
export function sentShape(fake: FakeIam, r: FakeRequest): { method: string; url: string; body: unknown } {
  return { method: r.method, url: `${fake.base}${r.url}`, body: formOf(r) };
}

/** A planned call with placeholder values replaced by what the run learned. */
export function resolved(p: PlannedCall, values: Readonly<Record<string, string>>): { method: string; url: string; body: unknown } {
  const body = Object.fromEntries(Object.entries(p.body as Record<string, string>).map(([k, v]) => [k, Object.hasOwn(values, v) ? values[v]! : v]));
  return { method: p.method, url: p.url, body };
}
