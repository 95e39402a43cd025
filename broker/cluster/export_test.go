package cluster

// TickController runs one pass of the controller loop, for tests driving a
// fake clock.
var TickController = (*Controller).tick

// CommandTypes exposes the decode registry to the completeness test.
var CommandTypes = commandTypes
