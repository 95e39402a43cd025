// Package cli is kdr's command tree (cobra). Each command has an Options
// struct, a NewCmdX constructor whose RunE fills the options from flags,
// config file and KDR_* environment (one viper instance per invocation), and
// a run function that calls into the domain packages. Errors reach Execute,
// the one place that prints them and picks the exit code.
package cli
