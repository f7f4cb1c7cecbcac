/** OpenID Shared Signals / CAEP: the `caep` provider (a SET transmitter) and its `caep:transmit` action. */
import { caepProvider } from "./provider.ts";
import { transmitAction } from "./transmit.ts";

export const provider = caepProvider;
export const actions = [transmitAction] as const;
