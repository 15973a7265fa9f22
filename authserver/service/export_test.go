package service

// SetHook makes s call f between a check and the write it guards (points:
// "login", "change", "reset"), so tests can interleave flows deterministically.
func SetHook(s *Service, f func(point string)) { s.hookFor = f }
