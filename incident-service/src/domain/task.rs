//! Response tasks: their status (who owns a task and which phase it belongs to are
//! [`OwnerTeam`](super::preparation::OwnerTeam) and [`TaskPhase`](super::preparation::TaskPhase)).

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum TaskStatus {
        Open = 1 => "OPEN",
        InProgress = 2 => "IN_PROGRESS",
        Blocked = 3 => "BLOCKED",
        Done = 4 => "DONE",
        WontDo = 5 => "WONT_DO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_name_each_status() {
        for &s in TaskStatus::ALL {
            assert_eq!(TaskStatus::try_from(s as i32).ok(), Some(s));
        }
        assert!(TaskStatus::try_from(0).is_err());
        assert!(TaskStatus::try_from(6).is_err());
        assert_eq!(TaskStatus::WontDo.as_str(), "WONT_DO");
    }
}
