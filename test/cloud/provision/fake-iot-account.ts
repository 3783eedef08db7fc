// An AWS IoT account in memory behind aws-sdk-client-mock: the nine calls `interlock provision` makes answer as the
// service does (ResourceNotFound, ResourceAlreadyExists, VersionConflict on a stale expectedVersion), and faults can
// be queued per action (throttling, access denied, a race). Nothing else of IoT is modelled.

import {
  AttachSecurityProfileCommand,
  CreateCustomMetricCommand,
  CreateSecurityProfileCommand,
  DescribeCustomMetricCommand,
  DescribeSecurityProfileCommand,
  DescribeThingGroupCommand,
  IoTClient,
  ListTargetsForSecurityProfileCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  UpdateCustomMetricCommand,
  UpdateSecurityProfileCommand,
  VersionConflictException,
  type Behavior,
  type MetricToRetain,
} from '@aws-sdk/client-iot';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';

export interface StoredMetric {
  metricType: string;
  displayName?: string | undefined;
}

export interface StoredProfile {
  description?: string | undefined;
  behaviors: Behavior[];
  metricsToRetain: MetricToRetain[];
  version: number;
}

/** Called before an action is served; may throw (a fault) or change the account (a race). Used once. */
export type Fault = () => void;

export class FakeIotAccount {
  readonly metrics = new Map<string, StoredMetric>();
  readonly profiles = new Map<string, StoredProfile>();
  readonly groups = new Map<string, string>();
  readonly targets = new Map<string, Set<string>>();
  readonly #faults = new Map<string, Fault[]>();
  readonly mock: AwsClientStub<IoTClient>;

  constructor() {
    this.mock = mockClient(IoTClient);
    const m = this.mock;
    m.on(DescribeCustomMetricCommand).callsFake(async (input: { metricName: string }) => {
      this.#fault('DescribeCustomMetric');
      const metric = this.metrics.get(input.metricName);
      if (metric === undefined) throw notFound(`custom metric ${input.metricName}`);
      return { metricName: input.metricName, metricArn: `arn:aws:iot:${REGION}:${ACCOUNT}:custommetric/${input.metricName}`, ...metric };
    });
    m.on(CreateCustomMetricCommand).callsFake(async (input: { metricName: string; metricType: string; displayName?: string }) => {
      this.#fault('CreateCustomMetric');
      if (this.metrics.has(input.metricName)) throw exists(`custom metric ${input.metricName}`);
      this.metrics.set(input.metricName, { metricType: input.metricType, displayName: input.displayName });
      return { metricName: input.metricName };
    });
    m.on(UpdateCustomMetricCommand).callsFake(async (input: { metricName: string; displayName: string }) => {
      this.#fault('UpdateCustomMetric');
      const metric = this.metrics.get(input.metricName);
      if (metric === undefined) throw notFound(`custom metric ${input.metricName}`);
      metric.displayName = input.displayName;
      return { metricName: input.metricName };
    });
    m.on(DescribeSecurityProfileCommand).callsFake(async (input: { securityProfileName: string }) => {
      this.#fault('DescribeSecurityProfile');
      const p = this.profiles.get(input.securityProfileName);
      if (p === undefined) throw notFound(`security profile ${input.securityProfileName}`);
      return {
        securityProfileName: input.securityProfileName,
        securityProfileDescription: p.description,
        behaviors: structuredClone(p.behaviors),
        additionalMetricsToRetainV2: structuredClone(p.metricsToRetain),
        version: p.version,
      };
    });
    m.on(CreateSecurityProfileCommand).callsFake(async (input: { securityProfileName: string; securityProfileDescription?: string; behaviors?: Behavior[]; additionalMetricsToRetainV2?: MetricToRetain[] }) => {
      this.#fault('CreateSecurityProfile');
      if (this.profiles.has(input.securityProfileName)) throw exists(`security profile ${input.securityProfileName}`);
      this.profiles.set(input.securityProfileName, {
        description: input.securityProfileDescription,
        behaviors: structuredClone(input.behaviors ?? []),
        metricsToRetain: structuredClone(input.additionalMetricsToRetainV2 ?? []),
        version: 1,
      });
      return { securityProfileName: input.securityProfileName };
    });
    m.on(UpdateSecurityProfileCommand).callsFake(async (input: { securityProfileName: string; securityProfileDescription?: string; behaviors?: Behavior[]; additionalMetricsToRetainV2?: MetricToRetain[]; expectedVersion?: number }) => {
      this.#fault('UpdateSecurityProfile');
      const p = this.profiles.get(input.securityProfileName);
      if (p === undefined) throw notFound(`security profile ${input.securityProfileName}`);
      if (input.expectedVersion !== undefined && input.expectedVersion !== p.version) {
        throw new VersionConflictException({ message: `expected version ${input.expectedVersion}, is ${p.version}`, $metadata: {} });
      }
      if (input.securityProfileDescription !== undefined) p.description = input.securityProfileDescription;
      if (input.behaviors !== undefined) p.behaviors = structuredClone(input.behaviors);
      if (input.additionalMetricsToRetainV2 !== undefined) p.metricsToRetain = structuredClone(input.additionalMetricsToRetainV2);
      p.version++;
      return { securityProfileName: input.securityProfileName, version: p.version };
    });
    m.on(DescribeThingGroupCommand).callsFake(async (input: { thingGroupName: string }) => {
      this.#fault('DescribeThingGroup');
      const arn = this.groups.get(input.thingGroupName);
      if (arn === undefined) throw notFound(`thing group ${input.thingGroupName}`);
      return { thingGroupName: input.thingGroupName, thingGroupArn: arn };
    });
    m.on(ListTargetsForSecurityProfileCommand).callsFake(async (input: { securityProfileName: string }) => {
      this.#fault('ListTargetsForSecurityProfile');
      if (!this.profiles.has(input.securityProfileName)) throw notFound(`security profile ${input.securityProfileName}`);
      return { securityProfileTargets: [...(this.targets.get(input.securityProfileName) ?? [])].map((arn) => ({ arn })) };
    });
    m.on(AttachSecurityProfileCommand).callsFake(async (input: { securityProfileName: string; securityProfileTargetArn: string }) => {
      this.#fault('AttachSecurityProfile');
      if (!this.profiles.has(input.securityProfileName)) throw notFound(`security profile ${input.securityProfileName}`);
      const set = this.targets.get(input.securityProfileName) ?? new Set<string>();
      set.add(input.securityProfileTargetArn);
      this.targets.set(input.securityProfileName, set);
      return {};
    });
  }

  addGroup(name: string): string {
    const arn = `arn:aws:iot:${REGION}:${ACCOUNT}:thinggroup/${name}`;
    this.groups.set(name, arn);
    return arn;
  }

  /** Queues faults for an action: each call of it uses the next one. */
  failNext(action: string, ...faults: Fault[]): void {
    this.#faults.set(action, [...(this.#faults.get(action) ?? []), ...faults]);
  }

  #fault(action: string): void {
    this.#faults.get(action)?.shift()?.();
  }

  /** The actions called, in order (e.g. "CreateCustomMetric"). */
  actions(): string[] {
    return this.mock.calls().map((call) => (call.args[0] as object).constructor.name.replace(/Command$/, ''));
  }

  restore(): void {
    this.mock.restore();
  }
}

function notFound(what: string): ResourceNotFoundException {
  return new ResourceNotFoundException({ message: `${what} does not exist`, $metadata: { httpStatusCode: 404 } });
}

function exists(what: string): ResourceAlreadyExistsException {
  return new ResourceAlreadyExistsException({ message: `${what} already exists`, resourceId: what, $metadata: { httpStatusCode: 409 } });
}
