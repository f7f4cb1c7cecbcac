import { defineCheck, type AnyCheckFactory } from "../plugin/check.ts";
import { mfaCheck } from "./mfa/index.ts";
import { managedDeviceCheck } from "./managed_device/index.ts";
import { locationCheck } from "./location/index.ts";
import { sessionAgeCheck } from "./session_age/index.ts";
import { certificateValidityCheck } from "./certificate_validity/index.ts";
import { deviceComplianceCheck } from "./device_compliance/index.ts";
import { anomalyDetectionCheck } from "./anomaly_detection/index.ts";
import { userRiskScoreCheck } from "./user_risk_score/index.ts";

/** Built-in check plugins. Add a folder and one line here. */
export const builtinChecks: readonly AnyCheckFactory[] = [
  defineCheck(mfaCheck),
  defineCheck(managedDeviceCheck),
  defineCheck(locationCheck),
  defineCheck(sessionAgeCheck),
  defineCheck(certificateValidityCheck),
  defineCheck(deviceComplianceCheck),
  defineCheck(anomalyDetectionCheck),
  defineCheck(userRiskScoreCheck),
];
