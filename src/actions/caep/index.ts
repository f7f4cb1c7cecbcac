/** OpenID Shared Signals / CAEP: the `caep` provider (a SET transmitter) and its `caep:transmit` action. */
import type { ActionFactory } from "../../plugin/action.ts";
import { caepProvider } from "./provider.ts";
import { transmitAction } from "./transmit.ts";

export const provider = caepProvider;
export const actions: readonly ActionFactory<any>[] = [transmitAction];
