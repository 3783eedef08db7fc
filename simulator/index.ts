// The simulator's public surface: stand-in device drivers (one per device kind), simulated people, and the
// scripted demo agent that integration tests and `npm start` drive.

export { ARM_ACTIONS, SimulatedArm } from './arm-driver.js';
export type { ArmStateMessage, SimulatedArmOptions } from './arm-driver.js';
export type { DriverOptions, ReceivedRelease } from './driver-runtime.js';
export { MOBILE_ROBOT_ACTIONS, SimulatedMobileRobot } from './mobile-robot-driver.js';
export type { MobileRobotDynamics, MobileRobotStateMessage, RobotPose, SimulatedMobileRobotOptions } from './mobile-robot-driver.js';
export { DEFAULT_MAX_WALKING_SPEED_M_PER_S, SimulatedPeople } from './people.js';
export type { Room, SimulatedPeopleOptions } from './people.js';
export { CONVEYOR_ACTIONS, SimulatedConveyor } from './conveyor-driver.js';
export type { ConveyorStateMessage, SimulatedConveyorOptions } from './conveyor-driver.js';
export { DEFAULT_PROCESS_SAFE_STATE, PROCESS_UNIT_ACTIONS, SimulatedProcessUnit } from './process-unit-driver.js';
export type { ProcessStateMessage, SimulatedProcessUnitOptions } from './process-unit-driver.js';
export { DEMO_STEPS, DemoAgent, rogueSigner } from './demo-agent.js';
export type { DemoAgentOptions, DemoStep, StepOutcome } from './demo-agent.js';
