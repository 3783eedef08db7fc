// The simulator's public surface: stand-in device drivers that integration tests and the demo drive.

export { ARM_ACTIONS, SimulatedArm } from './arm-driver.js';
export type { ArmStateMessage, ReceivedRelease, SimulatedArmOptions } from './arm-driver.js';
