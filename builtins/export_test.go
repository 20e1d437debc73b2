package builtins

// SetCommonPackages turns the common case of packages.star's package()
// on or off.
func SetCommonPackages(on bool) { noCommon.Store(!on) }

// SetSystemPackages turns system_packages on, or off (it returns None and
// system.star takes the Starlark way).
func SetSystemPackages(on bool) { noSystemPackages.Store(!on) }
