package builtins

// SetCommonPackages turns the common case of packages.star's package()
// on or off.
func SetCommonPackages(on bool) { noCommon.Store(!on) }
