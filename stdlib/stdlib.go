// Package stdlib embeds the Starlark standard library of nexis: build
// helpers and one module per section of the system config. Modules are
// loaded as load("@stdlib//name.star", ...).
//
// Build helpers: build.star (the generic builder), packages.star
// ([[packages]] entries). System sections, each turning its table into
// files for /etc and entries of the activation manifest:
//
//	host.star          [system]: hostname, hosts, os-release, timezone, kernel
//	locale.star        [system.locale]
//	users.star         [users.NAME], [groups.NAME], home files, authorized keys
//	firewall.star      [system.firewall]: nftables, iptables or firewalld
//	selinux.star       [system.selinux]: config, immutable-paths module, CIL files
//	network.star       [network]
//	config_files.star  [config_files.NAME]
//	dinit.star         [dinit_services.NAME], [nexis.dinit], the boot service
//	log_rotation.star  [[log_rotation]]
//	environment.star   [nexis.environment], per-user runtime dirs
//	generations.star   [nexis.generations]
//	hooks.star         [hooks]
//	lib.star           checks and helpers the sections share
//	system.star        collects every section into the system derivation; its
//	                   header is the contract with realise and activation
//
// The tests evaluate configs through lang.Eval and check every generated
// file with the real tool that reads it.
package stdlib

import "embed"

// FS holds the stdlib modules.
//
//go:embed *.star
var FS embed.FS
