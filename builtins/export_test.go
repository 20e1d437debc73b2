package builtins

// SetCommonPackages turns the common case of packages.star's package()
// on or off.
func SetCommonPackages(on bool) { noCommon.Store(!on) }

// SetGatherPackages turns gather_packages on, or off (it returns None and
// system.star takes the Starlark way).
func SetGatherPackages(on bool) { noGatherPackages.Store(!on) }
