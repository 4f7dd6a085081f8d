package tokens

// SetBeforeWrite lets tests act in the window between reconcile's MongoDB
// read and its bucket write.
func SetBeforeWrite(s *Store, f func(id string)) { s.beforeWrite = f }
